//go:build !hearth_notailnet

package tailnet

import (
	"fmt"
	"os"
	"strings"
)

// authKey resolves the auth key to hand to tsnet and says where it came
// from: "config", "file", "env" or "" (none: an interactive login).
func (c *Config) authKey() (key, source string, err error) {
	switch {
	case c.AuthKey != "":
		return c.AuthKey, "config", nil
	case c.AuthKeyFile != "":
		b, err := os.ReadFile(c.AuthKeyFile)
		if err != nil {
			return "", "", fmt.Errorf("read tailnet auth key file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", "", fmt.Errorf("tailnet auth key file %s is empty", c.AuthKeyFile)
		}
		if err := checkAuthKey(k); err != nil {
			return "", "", fmt.Errorf("tailnet auth key file %s: %w", c.AuthKeyFile, err)
		}
		return k, "file", nil
	case c.authKeyFromEnv() != "":
		return "", "env", nil // tsnet reads it itself
	}
	return "", "", nil
}
