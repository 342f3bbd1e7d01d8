package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

// acmeRig is a Manager in ModeACME with its plain-HTTP and HTTPS servers on
// loopback, and Pebble validating against them.
type acmeRig struct {
	m        *certs.Manager
	pebble   *certstest.Pebble
	httpsURL string // host:port of the HTTPS server
	log      *logBuffer
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

func newACMERig(t *testing.T, acme certs.ACMEConfig, blocked ...string) *acmeRig {
	t.Helper()
	httpLn, tlsLn := listen(t), listen(t)
	p := certstest.StartPebble(t, certstest.PebbleConfig{HTTPPort: port(httpLn), TLSPort: port(tlsLn), Blocked: blocked})
	acme.DirectoryURL = p.Directory
	acme.RootCAs = p.Roots
	acme.ListenHost = "127.0.0.1"
	acme.HTTPPort, acme.TLSPort = port(httpLn), port(tlsLn)
	log, buf := testLogger(t)
	m := newManager(t, certs.Config{Mode: certs.ModeACME, ACME: acme, Names: []string{"hearth.local", "127.0.0.1"}, Logger: log})

	// The listeners are bound before Start, as the wiring must do.
	plain := &http.Server{Handler: m.HTTPChallengeHandler(http.RedirectHandler("https://hearth.local/", http.StatusFound)), ErrorLog: slogDiscard()}
	secure := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: m.TLSConfig(), ErrorLog: slogDiscard()}
	go plain.Serve(httpLn)
	go secure.ServeTLS(tlsLn, "", "")
	t.Cleanup(func() { plain.Close(); secure.Close() })
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return &acmeRig{m: m, pebble: p, httpsURL: tlsLn.Addr().String(), log: buf}
}

func acmeStatus(m *certs.Manager, name string) certs.CertStatus {
	for _, c := range m.Status().Certificates {
		if c.Source == certs.SourceACME && c.Name == name {
			return c
		}
	}
	return certs.CertStatus{}
}

// TestACMEPebble obtains a certificate from a real ACME server (Pebble, in
// process) with each challenge type, answered by the appliance's own
// servers: HTTP-01 through HTTPChallengeHandler on the plain-HTTP port,
// TLS-ALPN-01 through TLSConfig on the HTTPS port.
func TestACMEPebble(t *testing.T) {
	const domain = "hearth.example.test"
	for _, tc := range []struct {
		name string
		acme certs.ACMEConfig
	}{
		{"http-01", certs.ACMEConfig{DisableTLSALPNChallenge: true}},
		{"tls-alpn-01", certs.ACMEConfig{DisableHTTPChallenge: true}},
	} {
		// (tc.name is also the challenge type the log must show.)
		t.Run(tc.name, func(t *testing.T) {
			tc.acme.Domains = []string{domain}
			tc.acme.Email = "household@example.com"
			r := newACMERig(t, tc.acme)
			waitFor(t, "the ACME certificate", func() bool { return !acmeStatus(r.m, domain).NotAfter.IsZero() })

			leaf, err := handshake(r.httpsURL, domain, r.pebble.IssuerRoots)
			if err != nil {
				t.Fatalf("handshake as %s trusting Pebble = %v", domain, err)
			}
			if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
				t.Errorf("%s served by %q, want Pebble", domain, leaf.Issuer.CommonName)
			}
			// The LAN names keep their local certificates.
			if _, err := handshake(r.httpsURL, "hearth.local", caPool(t, r.m)); err != nil {
				t.Errorf("handshake as hearth.local trusting the local CA = %v", err)
			}
			st := r.m.Status()
			if !st.Ready || st.Error != "" {
				t.Errorf("Status() = %+v, want ready without error", st)
			}
			solved := false
			for _, line := range strings.Split(r.log.String(), "\n") {
				solved = solved || strings.Contains(line, `msg="trying to solve challenge"`) && strings.Contains(line, "challenge_type="+tc.name)
			}
			if !solved {
				t.Errorf("the log shows no %s challenge being solved", tc.name)
			}
			r.m.Close()
			checkNoLeaks(t)
		})
	}
}

// TestACMERefused: the CA refuses the domain. The refusal is reported
// clearly (log, Status), and Hearth keeps serving its local certificates:
// the LAN names as usual and the primary one to the refused domain.
func TestACMERefused(t *testing.T) {
	const domain = "refused.example.test"
	r := newACMERig(t, certs.ACMEConfig{Domains: []string{domain}}, domain)
	waitFor(t, "the refusal", func() bool { return acmeStatus(r.m, domain).Error != "" })

	st := r.m.Status()
	c := acmeStatus(r.m, domain)
	if !strings.Contains(c.Error, "forbidden by policy") || !strings.Contains(c.Error, domain) || !c.NotAfter.IsZero() {
		t.Errorf("Status for %s = %+v, want the CA's refusal and no certificate", domain, c)
	}
	if st.Ready || !strings.Contains(st.Error, "forbidden by policy") {
		t.Errorf("Status() = ready %v, error %q; want not ready with the refusal", st.Ready, st.Error)
	}

	pool := caPool(t, r.m)
	if _, err := handshake(r.httpsURL, "hearth.local", pool); err != nil {
		t.Errorf("handshake as hearth.local after the refusal = %v", err)
	}
	_, err := handshake(r.httpsURL, domain, pool)
	var mismatch x509.HostnameError
	if !errors.As(err, &mismatch) || !strings.Contains(mismatch.Certificate.Subject.CommonName, "hearth.local") {
		t.Errorf("handshake as %s = %v, want the local primary certificate (a name mismatch)", domain, err)
	}
	r.m.Close()
	checkNoLeaks(t)
}

// TestHTTPChallengeHandlerPassesThrough: outside ModeACME, and for every
// other path, the wrapped handler answers.
func TestHTTPChallengeHandlerPassesThrough(t *testing.T) {
	m := startManager(t, certs.Config{})
	addr := serveHTTP(t, m.HTTPChallengeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	for _, path := range []string{"/", "/ca.crt", "/.well-known/acme-challenge/abc"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s = %d, want the wrapped handler's 418", path, resp.StatusCode)
		}
	}
}

func TestACMETLSConfigOffersChallengeProtocol(t *testing.T) {
	m := newManager(t, certs.Config{Mode: certs.ModeACME, ACME: certs.ACMEConfig{Domains: []string{"a.example.com"}}})
	if got := m.TLSConfig().NextProtos; len(got) != 3 || got[2] != "acme-tls/1" {
		t.Errorf("NextProtos = %q, want h2, http/1.1, acme-tls/1", got)
	}
	if got := newManager(t, certs.Config{}).TLSConfig().NextProtos; strings.Join(got, ",") != "h2,http/1.1" {
		t.Errorf("local NextProtos = %q", got)
	}
	_ = tls.VersionTLS12
}
