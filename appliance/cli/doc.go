// Package cli is the hearth command line: the command tree (serve, version,
// config print, admin …, backup, restore), their flags and help, and the
// mapping of outcomes to exit codes. Each command is built by a constructor
// function; cmd/hearth only calls Main.
package cli
