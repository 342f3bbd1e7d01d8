//go:build !hearth_notailnet

package tailnet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/tailnet"
	"github.com/hearth-home/hearth/appliance/tailnet/tailnettest"
)

// testCA issues certificates as the tailnet's CA (Let's Encrypt) would.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tailnet test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(name string) (*tls.Certificate, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(90 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, err
}

// TestCertificate: the tailnet's certificate for the node's name is served
// through GetCertificate/TLSConfig to a device's TLS handshake over the
// tailnet, fetched once and kept; other names fail at once with
// ErrNoCertificate (so the certs package serves its own). Offline, the
// fetch from tsnet (an ACME order at Let's Encrypt) is replaced by a test
// CA; the real fetch is tried too and must fail cleanly, without traffic
// leaving the namespace.
func TestCertificate(t *testing.T) {
	if !tailnettest.Isolate(t) {
		return
	}
	checkGoroutines(t)
	ctl := tailnettest.StartControl(t, tailnettest.ControlConfig{AuthKey: authKey})
	ca := newTestCA(t)
	var fetches atomic.Int32
	fetched := make(chan string, 10)
	n := newNode(t, ctl, tailnet.Config{AuthKey: authKey, FetchCertificate: true})
	tailnet.SetCertFetch(n, func(ctx context.Context, name string) (*tls.Certificate, error) {
		fetches.Add(1)
		fetched <- name
		return ca.issue(name)
	})
	startNode(t, n)
	name := n.DNSName()

	// FetchCertificate: fetched as soon as the node is up.
	select {
	case got := <-fetched:
		if got != name {
			t.Errorf("prefetched %q, want %q", got, name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the certificate was not fetched when the node came up")
	}

	ln, err := n.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn := tls.NewListener(ln, n.TLSConfig())
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				io.WriteString(c, "hi")
			}()
		}
	}()
	phone := ctl.NewClient(t, "alices-laptop")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nodeAddr := netip.AddrPortFrom(n.Addrs()[0], 443).String()
	handshake := func(serverName string) (*x509.Certificate, error) {
		raw, err := phone.Dial(ctx, "tcp", nodeAddr)
		if err != nil {
			return nil, err
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{ServerName: serverName, RootCAs: ca.pool})
		if err := c.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return c.ConnectionState().PeerCertificates[0], nil
	}
	for i := range 3 {
		leaf, err := handshake(name)
		if err != nil || leaf.Subject.CommonName != name {
			t.Fatalf("handshake %d as %s over the tailnet = %v, %v", i, name, leaf, err)
		}
	}
	if got := fetches.Load(); got != 1 {
		t.Errorf("%d fetches for 3 handshakes, want 1 (served from memory)", got)
	}
	if _, err := handshake("other." + tailnettest.DefaultDomain); err == nil {
		t.Error("handshake for a name the tailnet does not certify succeeded")
	}

	for _, sni := range []string{"", "hearth.local", "other." + tailnettest.DefaultDomain} {
		if _, err := n.GetCertificate(&tls.ClientHelloInfo{ServerName: sni}); !errors.Is(err, tailnet.ErrNoCertificate) {
			t.Errorf("GetCertificate(%q) = %v, want ErrNoCertificate", sni, err)
		}
	}
	if c, err := n.GetCertificate(&tls.ClientHelloInfo{ServerName: strings.ToUpper(name) + "."}); err != nil || c.Leaf.Subject.CommonName != name {
		t.Errorf("GetCertificate(upper case, trailing dot) = %v", err)
	}
}

// TestCertificateUnreachable: the real fetch, with no ACME CA reachable
// (the namespace has only loopback), fails with a clear error within the
// handshake's time, and the next handshakes fail at once until the retry
// delay passes instead of starting an order each.
func TestCertificateUnreachable(t *testing.T) {
	if !tailnettest.Isolate(t) {
		return
	}
	checkGoroutines(t)
	ctl := tailnettest.StartControl(t, tailnettest.ControlConfig{AuthKey: authKey})
	n := newNode(t, ctl, tailnet.Config{AuthKey: authKey})
	startNode(t, n)
	hello := &tls.ClientHelloInfo{ServerName: n.DNSName()}
	start := time.Now()
	_, err := n.GetCertificate(hello)
	t.Logf("the first fetch failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || errors.Is(err, tailnet.ErrNoCertificate) || !strings.Contains(err.Error(), n.DNSName()) {
		t.Fatalf("GetCertificate with no ACME CA = %v, want the fetch's failure", err)
	}
	start = time.Now()
	if _, err2 := n.GetCertificate(hello); err2 == nil || err2.Error() != err.Error() || time.Since(start) > 100*time.Millisecond {
		t.Errorf("second GetCertificate = %v after %v, want the same failure at once", err2, time.Since(start))
	}
	n.Close()
	checkNodeGoroutines(t)
}

// TestCertificateACME: the whole way a tailnet certificate comes, offline.
// The node asks tsnet, tsnet orders the certificate from an ACME CA (Pebble
// standing in for Let's Encrypt) and proves the name with a DNS-01 record
// the coordination server publishes; the certificate then serves a
// device's TLS handshake over the tailnet, and the device trusts it.
func TestCertificateACME(t *testing.T) {
	if !tailnettest.Isolate(t) {
		return
	}
	checkGoroutines(t)
	ctl := tailnettest.StartControl(t, tailnettest.ControlConfig{AuthKey: authKey})
	acme := tailnettest.StartACME(t, ctl)
	n := newNode(t, ctl, tailnet.Config{AuthKey: authKey, FetchCertificate: true})
	startNode(t, n)
	name := n.DNSName()

	ln, err := n.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn := tls.NewListener(ln, n.TLSConfig())
	defer tlsLn.Close()
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	phone := ctl.NewClient(t, "alices-tablet")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	var leaf *x509.Certificate
	for leaf == nil {
		raw, err := phone.Dial(ctx, "tcp", netip.AddrPortFrom(n.Addrs()[0], 443).String())
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{ServerName: name, RootCAs: acme.Roots})
		err = c.HandshakeContext(ctx)
		raw.Close()
		if err == nil {
			leaf = c.ConnectionState().PeerCertificates[0]
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no handshake with the tailnet's certificate: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // still being issued
	}
	t.Logf("certificate for %s from %q after %v", name, leaf.Issuer.CommonName, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") || leaf.DNSNames[0] != name {
		t.Errorf("served %v from %q, want %s from Pebble", leaf.DNSNames, leaf.Issuer.CommonName, name)
	}
}
