package certstest

import (
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// PebbleConfig configures StartPebble.
type PebbleConfig struct {
	// HTTPPort and TLSPort are where Pebble's validation authority connects
	// on 127.0.0.1 for HTTP-01 and TLS-ALPN-01 challenges: the ports of the
	// server under test.
	HTTPPort, TLSPort int
	// Blocked are domains Pebble refuses by policy, to test a CA that says
	// no.
	Blocked []string
	// Log receives Pebble's log; nil discards it.
	Log io.Writer
}

// Pebble is a running in-process Pebble (Let's Encrypt's test ACME server).
// Every name resolves to 127.0.0.1 for its validation authority.
type Pebble struct {
	// Directory is the ACME directory URL (https on 127.0.0.1).
	Directory string
	// Roots verifies the directory's HTTPS (pass it as the ACME RootCAs).
	Roots *x509.CertPool
	// IssuerRoots verifies the certificates Pebble issues.
	IssuerRoots *x509.CertPool
}

// StartPebble starts Pebble on 127.0.0.1 for the rest of the test, with
// validation retries and sleeps off and no nonce rejections, so an
// issuance takes a fraction of a second. It sets environment variables, so
// the test must not be parallel.
func StartPebble(t testing.TB, cfg PebbleConfig) *Pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	out := cfg.Log
	if out == nil {
		out = io.Discard
	}
	logger := log.New(out, "pebble ", 0)

	resolver := startDNS(t)
	store := db.NewMemoryStore()
	for _, d := range cfg.Blocked {
		if err := store.AddBlockedDomain(d); err != nil {
			t.Fatalf("pebble: block %s: %v", d, err)
		}
	}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "The default profile"},
	})
	validator := va.New(logger, cfg.HTTPPort, cfg.TLSPort, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewUnstartedServer(front.Handler())
	srv.StartTLS()
	t.Cleanup(srv.Close)

	p := &Pebble{Directory: srv.URL + wfe.DirectoryPath, Roots: x509.NewCertPool(), IssuerRoots: x509.NewCertPool()}
	p.Roots.AddCert(srv.Certificate())
	for i := range authority.GetNumberOfRootCerts() {
		p.IssuerRoots.AddCert(authority.GetRootCert(i).Cert)
	}
	return p
}

// startDNS serves DNS over TCP on 127.0.0.1 (Pebble's resolver uses TCP),
// answering every A question with 127.0.0.1 and every other question with
// no records. It returns the server's address.
func startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns: listen: %v", err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}
