package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
)

// fakeTailnet stands in for the tailnet package's GetCertificate: a
// certificate from "the tailnet's CA" for its one name, or an error.
type fakeTailnet struct {
	mu    sync.Mutex
	cert  *tls.Certificate
	fail  error
	calls []string
}

func newFakeTailnet(t *testing.T, name string) *fakeTailnet {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		Issuer: pkix.Name{CommonName: "tailnet test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeTailnet{cert: &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

func (f *fakeTailnet) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, hello.ServerName)
	if f.fail != nil {
		return nil, f.fail
	}
	return f.cert, nil
}

// TestTailnetMode: the *.ts.net name is served from the tailnet hook, and
// from the local CA when the hook fails; other names never reach the hook.
func TestTailnetMode(t *testing.T) {
	const ts = "hearth.tail1234.ts.net"
	tn := newFakeTailnet(t, ts)
	m := startManager(t, certs.Config{Mode: certs.ModeTailnet, TailnetGetCertificate: tn.GetCertificate,
		Names: []string{"hearth.local", "127.0.0.1", ts}})
	addr := serveTLS(t, m.TLSConfig())
	pool := caPool(t, m)

	if got := served(t, m, ts); got.Subject.CommonName != ts || got.Issuer.CommonName == caPoolSubject(t, m) {
		t.Errorf("%s served %q from %q, want the tailnet's certificate", ts, got.Subject.CommonName, got.Issuer.CommonName)
	}
	if _, err := handshake(addr, "hearth.local", pool); err != nil {
		t.Errorf("handshake as hearth.local = %v", err)
	}
	if got := strings.Join(tn.calls, ","); got != ts {
		t.Errorf("tailnet hook called for %q, want only %s", got, ts)
	}
	tailnetEntry := func() certs.CertStatus {
		for _, c := range m.Status().Certificates {
			if c.Source == certs.SourceTailnet {
				return c
			}
		}
		return certs.CertStatus{}
	}
	if c := tailnetEntry(); c.Name != ts || c.NotAfter.Before(time.Now().Add(80*24*time.Hour)) || c.Error != "" {
		t.Errorf("tailnet status = %+v, want the tailnet certificate's expiry", c)
	}

	// The tailnet cannot give a certificate (no HTTPS enabled, offline):
	// the local CA's certificate for the name is served instead.
	tn.mu.Lock()
	tn.fail = errors.New("tailnet: HTTPS certificates are not enabled")
	tn.mu.Unlock()
	if _, err := handshake(addr, ts, pool); err != nil {
		t.Errorf("handshake as %s with the hook failing, trusting the local CA = %v", ts, err)
	}
	if c := tailnetEntry(); !strings.Contains(c.Error, "not enabled") {
		t.Errorf("tailnet status = %+v, want the hook's error", c)
	}
	if st := m.Status(); !st.Ready {
		t.Errorf("Status() = %+v, want ready: the local fallback serves", st)
	}
}

func TestTailnetHookOnlyInTailnetMode(t *testing.T) {
	const ts = "hearth.tail1234.ts.net"
	tn := newFakeTailnet(t, ts)
	m := startManager(t, certs.Config{TailnetGetCertificate: tn.GetCertificate, Names: []string{"hearth.local", ts}})
	if got := served(t, m, ts); got.Issuer.CommonName != caPoolSubject(t, m) {
		t.Errorf("in local mode %s is served by %q, want the local CA", ts, got.Issuer.CommonName)
	}
	if len(tn.calls) != 0 {
		t.Errorf("tailnet hook called in local mode: %q", tn.calls)
	}
}
