// Package config owns Hearth's settings: the list of keys with their
// defaults, the TOML configuration file, the HEARTH_* environment variables
// and command-line flags, merged with the precedence flag > environment >
// file > default. It remembers where every value came from, so a file can
// set false or 0 and `hearth config print` can say why a value is what it is.
// Unknown keys and bad values are refused with the key, the value and why.
package config
