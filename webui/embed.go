// Package webui holds Hearth's web app: plain HTML, CSS and JavaScript
// modules served straight from the binary, with no build step. Its browser
// tests live in webui/tests.
package webui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files returns the app's files with index.html at the root.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("webui: embedded static directory missing: " + err.Error())
	}
	return sub
}
