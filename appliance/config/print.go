package config

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Setting is one effective value with its origin, as `config print` shows it.
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source Source `json:"source"`
	Env    string `json:"env"`
	Flag   string `json:"flag"`
}

// Settings lists every key's effective value and origin.
func (c *Config) Settings() []Setting {
	out := make([]Setting, 0, len(keys))
	for _, k := range keys {
		out = append(out, Setting{Key: k.Name, Value: k.shown(c), Source: c.Source(k.Name), Env: k.Env(), Flag: "--" + k.Flag()})
	}
	return out
}

// WriteTOML writes the effective configuration as a TOML file, each line
// annotated with where its value came from.
func (c *Config) WriteTOML(w io.Writer) error {
	if c.File != "" {
		fmt.Fprintf(w, "# effective configuration (file: %s)\n", c.File)
	} else {
		fmt.Fprintf(w, "# effective configuration (no file)\n")
	}
	for _, k := range keys {
		v := k.shown(c)
		if k.Kind != KindBool {
			v = strconv.Quote(v)
		}
		src := string(c.Source(k.Name))
		switch c.Source(k.Name) {
		case FromEnv:
			src += " " + k.Env()
		case FromFlag:
			src += " --" + k.Flag()
		case FromFile:
			src += " " + c.File
		}
		if _, err := fmt.Fprintf(w, "%-13s = %-24s # %s\n", k.Name, v, src); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes Settings as a JSON array.
func (c *Config) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c.Settings())
}
