package tailnet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/tailnet"
)

// TestConfig: New refuses what cannot work and says why, without echoing a
// secret; valid configurations make a node (ErrNotBuilt in a build without
// the tailnet).
func TestConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  tailnet.Config
		want string // part of the error; "" for none
	}{
		{"defaults", tailnet.Config{Dir: dir}, ""},
		{"everything", tailnet.Config{Dir: dir, Hostname: "Hearth-Kitchen", AuthKey: "tskey-auth-k1-abc", ControlURL: "https://headscale.example.com:8080",
			Ephemeral: true, Port: 41641, FetchCertificate: true}, ""},
		{"key file", tailnet.Config{Dir: dir, AuthKeyFile: "/etc/hearth/tailnet.key"}, ""},
		{"no dir", tailnet.Config{}, "no state directory"},
		{"hostname with space", tailnet.Config{Dir: dir, Hostname: "my hearth"}, `hostname "my hearth"`},
		{"hostname with underscore", tailnet.Config{Dir: dir, Hostname: "hearth_1"}, "letters, digits and inner hyphens"},
		{"hostname with leading hyphen", tailnet.Config{Dir: dir, Hostname: "-hearth"}, "inner hyphens"},
		{"hostname with dot", tailnet.Config{Dir: dir, Hostname: "hearth.home"}, "inner hyphens"},
		{"hostname too long", tailnet.Config{Dir: dir, Hostname: strings.Repeat("h", 64)}, "at most 63"},
		{"key and key file", tailnet.Config{Dir: dir, AuthKey: "tskey-auth-x", AuthKeyFile: "/k"}, "set one"},
		{"key with newline", tailnet.Config{Dir: dir, AuthKey: "tskey-auth-secret\n"}, "control characters"},
		{"key with space", tailnet.Config{Dir: dir, AuthKey: "tskey-auth secret"}, "spaces"},
		{"control URL without scheme", tailnet.Config{Dir: dir, ControlURL: "headscale.example.com"}, "want an http or https URL"},
		{"control URL ftp", tailnet.Config{Dir: dir, ControlURL: "ftp://example.com"}, "want an http or https URL"},
		{"control URL without host", tailnet.Config{Dir: dir, ControlURL: "https://"}, "want an http or https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := tailnet.New(tc.cfg)
			switch {
			case tc.want == "" && !tailnet.Built:
				if !errors.Is(err, tailnet.ErrNotBuilt) {
					t.Fatalf("New(%+v) = %v, want ErrNotBuilt", tc.cfg, err)
				}
			case tc.want == "":
				if err != nil {
					t.Fatalf("New(%+v) = %v, want a node", tc.cfg, err)
				}
				st := n.Status()
				if st.State != tailnet.StateStopped || st.Hostname != strings.ToLower(tc.cfg.Hostname) && tc.cfg.Hostname != "" ||
					tc.cfg.Hostname == "" && st.Hostname != tailnet.DefaultHostname {
					t.Errorf("Status() of a new node = %+v, want stopped with the host name in lower case", st)
				}
				if err := n.Close(); err != nil {
					t.Errorf("Close of a node never started = %v", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("New(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
			case strings.Contains(err.Error(), "secret"):
				t.Errorf("New's error %q shows the auth key", err)
			}
		})
	}
}

// TestIdentityIsPerson: only a user's device may be signed in by its
// tailnet identity; a tagged device belongs to no one.
func TestIdentityIsPerson(t *testing.T) {
	for _, tc := range []struct {
		id   tailnet.Identity
		want bool
	}{
		{tailnet.Identity{UserID: 7, LoginName: "alice@example.com"}, true},
		{tailnet.Identity{UserID: 7, LoginName: "alice@example.com", Tags: []string{"tag:server"}}, false},
		{tailnet.Identity{Tags: []string{"tag:server"}}, false},
		{tailnet.Identity{UserID: 7}, false},
		{tailnet.Identity{LoginName: "alice@example.com"}, false},
	} {
		if got := tc.id.IsPerson(); got != tc.want {
			t.Errorf("%+v.IsPerson() = %v, want %v", tc.id, got, tc.want)
		}
	}
}
