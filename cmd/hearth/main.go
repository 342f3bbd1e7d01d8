// Command hearth is the Hearth home appliance: see `hearth --help`.
package main

import (
	"os"

	"github.com/hearth-home/hearth/appliance/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], &cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version,
	}))
}
