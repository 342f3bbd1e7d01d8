package certs_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/certs"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMobileConfigGolden compares the profile for testdata/ca.pem (a CA
// made by this package) with testdata/hearth.mobileconfig. Run with -update
// after an intended change.
func TestMobileConfigGolden(t *testing.T) {
	ca := readTestdata(t, "ca.pem")
	got, err := certs.MobileConfig(ca, "hearth")
	if err != nil {
		t.Fatalf("MobileConfig = %v", err)
	}
	golden := filepath.Join("testdata", "hearth.mobileconfig")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := readTestdata(t, "hearth.mobileconfig"); !bytes.Equal(got, want) {
		t.Errorf("MobileConfig(testdata/ca.pem) differs from %s; got:\n%s", golden, got)
	}
	again, _ := certs.MobileConfig(ca, "hearth")
	if !bytes.Equal(got, again) {
		t.Error("MobileConfig is not deterministic; re-downloading would install a second profile")
	}
}

// plistValues walks a property list and returns each <key>'s value text
// (for <data>, <string>, <integer>) in order, and whether it parsed.
func plistValues(t testing.TB, b []byte) map[string][]string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	vals := map[string][]string{}
	var key, text string
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return vals
			}
			t.Fatalf("profile is not well-formed XML: %v\n%s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			text = ""
		case xml.CharData:
			text += string(tok)
		case xml.EndElement:
			switch tok.Name.Local {
			case "key":
				key = text
			case "string", "data", "integer":
				vals[key] = append(vals[key], text)
			}
		}
	}
}

func TestMobileConfigContent(t *testing.T) {
	m := startManager(t, certs.Config{})
	ca, _ := certs.ParseCACert(m.CACertPEM())
	name := `Anna's <Hearth> & "co"`
	b, err := certs.MobileConfig(m.CACertPEM(), name)
	if err != nil {
		t.Fatal(err)
	}
	v := plistValues(t, b)
	if got := v["PayloadContent"]; len(got) != 1 || got[0] != base64.StdEncoding.EncodeToString(ca.Raw) {
		t.Errorf("PayloadContent = %q, want the CA certificate's DER", got)
	}
	if got := v["PayloadType"]; len(got) != 2 || got[0] != "com.apple.security.root" || got[1] != "Configuration" {
		t.Errorf("PayloadType = %q", got)
	}
	if got := v["PayloadDisplayName"]; len(got) != 2 || got[0] != ca.Subject.CommonName || !strings.Contains(got[1], name) {
		t.Errorf("PayloadDisplayName = %q, want the CA subject and the escaped name", got)
	}
	if got := strings.Join(v["PayloadDescription"], " "); !strings.Contains(got, certs.Fingerprint(ca.Raw)) {
		t.Errorf("PayloadDescription %q does not show the fingerprint to compare", got)
	}
	uuids := v["PayloadUUID"]
	if len(uuids) != 2 || uuids[0] == uuids[1] || len(uuids[0]) != 36 || uuids[0][14] != '8' {
		t.Errorf("PayloadUUID = %q, want two distinct version-8 UUIDs", uuids)
	}
}

func TestMobileConfigBadInput(t *testing.T) {
	ca := readTestdata(t, "ca.pem")
	leafPEM := func() []byte {
		m := startManager(t, certs.Config{})
		return pemCert(served(t, m, "hearth.local").Raw)
	}()
	for _, tc := range []struct {
		name string
		pem  []byte
		who  string
	}{
		{"not PEM", []byte("hello"), "hearth"},
		{"empty", nil, "hearth"},
		{"a leaf, not a CA", leafPEM, "hearth"},
		{"damaged certificate", bytes.Replace(ca, []byte("MII"), []byte("XXX"), 1), "hearth"},
		{"empty name", ca, " "},
		{"control character in name", ca, "hearth\x00"},
		{"name too long", ca, strings.Repeat("h", 65)},
		{"invalid UTF-8 name", ca, "\xff"},
	} {
		if _, err := certs.MobileConfig(tc.pem, tc.who); err == nil {
			t.Errorf("MobileConfig(%s) = nil error", tc.name)
		}
	}
}

func FuzzMobileConfig(f *testing.F) {
	ca := readTestdata(f, "ca.pem")
	f.Add(ca, "hearth")
	f.Add(ca, `<&>"'`)
	f.Add([]byte("garbage"), "x")
	f.Fuzz(func(t *testing.T, caPEM []byte, name string) {
		b, err := certs.MobileConfig(caPEM, name)
		if err != nil {
			return
		}
		plistValues(t, b) // well-formed whatever the name
	})
}
