package certs_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

func TestNewValidates(t *testing.T) {
	kv := certstest.NewMemKV()
	hook := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		cfg  certs.Config
		want string // substring of the error; "" means valid
	}{
		{"minimal", certs.Config{KV: kv, Names: []string{"hearth.local"}}, ""},
		{"names normalized", certs.Config{KV: kv, Names: []string{" Hearth.Local. ", "hearth.local", "::FFFF:10.0.0.1", "fe80::1"}}, ""},
		{"no KV", certs.Config{Names: []string{"hearth.local"}}, "no KV"},
		{"no names", certs.Config{KV: kv}, "no names"},
		{"bad name", certs.Config{KV: kv, Names: []string{"hearth local"}}, `"hearth local" is not a host name`},
		{"wildcard", certs.Config{KV: kv, Names: []string{"*.local"}}, "not a host name"},
		{"empty name", certs.Config{KV: kv, Names: []string{""}}, "not a host name"},
		{"unknown mode", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: "off"}, `unknown TLS mode "off"`},
		{"leaf outlives CA", certs.Config{KV: kv, Names: []string{"h.local"}, LeafLifetime: 11 * 365 * 24 * time.Hour}, "shorter than the CA"},
		{"negative", certs.Config{KV: kv, Names: []string{"h.local"}, LeafLifetime: -1}, "negative"},
		{"acme without domains", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME}, "at least one domain"},
		{"acme http directory", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME,
			ACME: certs.ACMEConfig{Domains: []string{"a.example.com"}, DirectoryURL: "http://ca.example/dir"}}, "not an https:// URL"},
		{"acme bad e-mail", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME,
			ACME: certs.ACMEConfig{Domains: []string{"a.example.com"}, Email: "me"}}, "not an e-mail"},
		{"acme no challenge", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME,
			ACME: certs.ACMEConfig{Domains: []string{"a.example.com"}, DisableHTTPChallenge: true, DisableTLSALPNChallenge: true}}, "both are disabled"},
		{"acme bad port", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME,
			ACME: certs.ACMEConfig{Domains: []string{"a.example.com"}, HTTPPort: 70000}}, "0 to 65535"},
		{"acme bad domain", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME,
			ACME: certs.ACMEConfig{Domains: []string{"a b"}}}, "acme domains"},
		{"acme", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeACME, ACME: certs.ACMEConfig{Domains: []string{"a.example.com"}}}, ""},
		{"tailnet without hook", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeTailnet}, "needs TailnetGetCertificate"},
		{"tailnet", certs.Config{KV: kv, Names: []string{"h.local"}, Mode: certs.ModeTailnet, TailnetGetCertificate: hook}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := certs.New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New = %v, want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "certs: ")):
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
			if m != nil {
				m.Close()
			}
		})
	}
}

func TestNamesNormalized(t *testing.T) {
	m := startManager(t, certs.Config{Names: []string{" Hearth.Local. ", "hearth.local", "::FFFF:10.0.0.1"}})
	var names []string
	for _, c := range m.Status().Certificates {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "hearth.local 10.0.0.1" {
		t.Errorf("names = %q, want %q", got, "hearth.local 10.0.0.1")
	}
}
