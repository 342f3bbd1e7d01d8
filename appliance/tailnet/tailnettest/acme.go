//go:build !hearth_notailnet

package tailnettest

import (
	"crypto/tls"
	"crypto/x509"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"tailscale.com/tailcfg"
)

// ACME is an in-process ACME CA (Let's Encrypt's Pebble) standing in for
// Let's Encrypt, wired to the coordination server the way Tailscale's is:
// a node that wants a certificate for its *.ts.net name asks the
// coordination server to publish the DNS-01 challenge as a TXT record, and
// the CA looks it up there.
type ACME struct {
	// Roots verifies the certificates the CA issues.
	Roots *x509.CertPool

	mu  sync.Mutex
	txt map[string][]string // lower-case FQDN with trailing dot -> values
}

// StartACME starts the CA on 127.0.0.1 for the rest of the test and points
// every tsnet node in the process at it (TS_DEBUG_ACME_DIRECTORY_URL, and
// Pebble's HTTPS root added to http.DefaultTransport, which tsnet's ACME
// client uses). It sets environment variables and changes
// http.DefaultTransport until the test ends, so the test must not be
// parallel. Set it up before the nodes ask for certificates.
func StartACME(t testing.TB, ctl *Control) *ACME {
	t.Helper()
	if err := loopbackOnly(); err != nil {
		t.Fatalf("tailnettest.StartACME: %v", err)
	}
	a := &ACME{Roots: x509.NewCertPool(), txt: map[string][]string{}}
	ctl.Server.OnSetDNS = func(req *tailcfg.SetDNSRequest) error {
		if req.Type == "TXT" {
			a.mu.Lock()
			name := dns.Fqdn(strings.ToLower(req.Name))
			a.txt[name] = append(a.txt[name], req.Value)
			a.mu.Unlock()
		}
		return nil
	}
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(logWriter{}, "pebble ", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, 0, 0, false, a.startDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	// Let's Encrypt names the order in its answer to a finalization
	// (Location), and tsnet's ACME client relies on it; Pebble does not.
	handler := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.URL.Path, "/finalize-order/"); ok {
			w.Header().Set("Location", "https://"+r.Host+"/my-order/"+id)
		}
		handler.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(logWriter{}, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	for i := range authority.GetNumberOfRootCerts() {
		a.Roots.AddCert(authority.GetRootCert(i).Cert)
	}
	t.Setenv("TS_DEBUG_ACME_DIRECTORY_URL", srv.URL+wfe.DirectoryPath)

	tr := http.DefaultTransport.(*http.Transport)
	old := tr.TLSClientConfig
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	t.Cleanup(func() { tr.CloseIdleConnections(); tr.TLSClientConfig = old })
	return a
}

// startDNS serves the published TXT records over TCP on 127.0.0.1 (Pebble
// resolves over TCP) and returns its address.
func (a *ACME) startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("acme dns: listen: %v", err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype != dns.TypeTXT {
				continue
			}
			a.mu.Lock()
			vals := a.txt[strings.ToLower(q.Name)]
			a.mu.Unlock()
			for _, v := range vals {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
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
