package peer

import (
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxPart is the longest path element kept, in bytes.
const maxPart = 255

// SafeName turns a name from a manifest into a relative path that stays
// inside the receiving directory (PROTOCOL.md section 3.5): each
// "/"-separated part is kept only when it is not empty, "." or "..";
// backslashes, control characters and <>:"|?* become "_"; parts are cut to
// 255 bytes; Windows reserved names get a leading "_"; an empty result is
// "file". The result uses "/" as separator.
func SafeName(name string) string {
	var parts []string
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." || p == ".." {
			continue
		}
		var b strings.Builder
		for _, r := range p {
			switch {
			case r == utf8.RuneError, r < 0x20, r == 0x7f, strings.ContainsRune(`\<>:"|?*`, r):
				b.WriteByte('_')
			default:
				b.WriteRune(r)
			}
		}
		s := cutUTF8(b.String(), maxPart)
		if reserved(s) {
			s = cutUTF8("_"+s, maxPart)
		}
		// A part cut or escaped into "." or ".." must not climb either.
		if s == "." || s == ".." {
			s = "_" + s
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "file"
	}
	return strings.Join(parts, "/")
}

// cutUTF8 shortens s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// reserved reports a Windows device name, with any extension.
func reserved(part string) bool {
	base, _, _ := strings.Cut(part, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '1' && base[3] <= '9' {
		return true
	}
	return false
}

// numbered returns the n-th alternative of a name ("a/b.txt", 2 →
// "a/b (2).txt"), the number placed before the extension.
func numbered(name string, n int) string {
	dir, file := path.Split(name)
	ext := path.Ext(file)
	if ext == file { // ".bashrc": no extension
		ext = ""
	}
	stem := strings.TrimSuffix(file, ext)
	suffix := " (" + strconv.Itoa(n) + ")"
	stem = cutUTF8(stem, maxPart-len(suffix)-len(ext)-len(PartSuffix))
	return dir + stem + suffix + ext
}
