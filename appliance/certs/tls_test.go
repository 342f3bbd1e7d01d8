package certs_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
)

// TestClientTrustsOnlyCA is what a device does after installing /ca.crt: a
// Go TLS client whose only root is CACertPEM() reaches the appliance as
// https://hearth.local (dialled on loopback), by IP without SNI, and not
// under a name the certificate does not carry, nor without the CA.
func TestClientTrustsOnlyCA(t *testing.T) {
	m := startManager(t, certs.Config{Names: []string{"hearth.local", "localhost", "127.0.0.1"}})
	addr := serveTLS(t, m.TLSConfig())
	pool := caPool(t, m)

	for _, tc := range []struct {
		serverName string
		roots      *x509.CertPool
		want       error // nil, or the kind of x509 error wanted
	}{
		{"hearth.local", pool, nil},
		{"localhost", pool, nil},
		{"127.0.0.1", pool, nil}, // an IP: no SNI is sent, the certificate for the local address is served
		{"HEARTH.local", pool, nil},
		{"other.local", pool, x509.HostnameError{}},
		{"hearth.example.com", pool, x509.HostnameError{}},
		{"hearth.local", x509.NewCertPool(), x509.UnknownAuthorityError{}},
	} {
		leaf, err := handshake(addr, tc.serverName, tc.roots)
		switch want := tc.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("handshake as %q = %v, want success", tc.serverName, err)
			} else if leaf.Issuer.CommonName != caPoolSubject(t, m) {
				t.Errorf("handshake as %q: issuer %q, want the local CA", tc.serverName, leaf.Issuer.CommonName)
			}
		case x509.HostnameError:
			if !errors.As(err, &want) {
				t.Errorf("handshake as %q = %v, want a hostname mismatch", tc.serverName, err)
			}
		case x509.UnknownAuthorityError:
			if !errors.As(err, &want) {
				t.Errorf("handshake as %q without the CA = %v, want an unknown authority", tc.serverName, err)
			}
		}
	}

	// Over HTTP/2, the way a browser would.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr) // "resolve" hearth.local to loopback
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://hearth.local/")
	if err != nil {
		t.Fatalf("GET https://hearth.local/ = %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("GET https://hearth.local/ used %s, want HTTP/2", resp.Proto)
	}
}

func caPoolSubject(t testing.TB, m *certs.Manager) string {
	t.Helper()
	ca, err := certs.ParseCACert(m.CACertPEM())
	if err != nil {
		t.Fatal(err)
	}
	return ca.Subject.CommonName
}

func TestCACertificate(t *testing.T) {
	m := startManager(t, certs.Config{})
	ca, err := certs.ParseCACert(m.CACertPEM())
	if err != nil {
		t.Fatalf("CACertPEM: %v", err)
	}
	if _, ok := ca.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok {
		t.Fatalf("CA public key is %T", ca.PublicKey)
	}
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate: IsCA %v, MaxPathLenZero %v, KeyUsage %v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if got := ca.NotAfter.Sub(ca.NotBefore); got < certs.DefaultCALifetime {
		t.Errorf("CA lifetime = %s, want %s", got, certs.DefaultCALifetime)
	}
	if !slices.Equal(ca.PermittedDNSDomains, certs.DefaultCADomains()) {
		t.Errorf("CA permitted domains = %q, want %q", ca.PermittedDNSDomains, certs.DefaultCADomains())
	}
	st := m.Status()
	if st.CA == nil || st.CA.SHA256 != certs.Fingerprint(ca.Raw) || st.CA.Subject != ca.Subject.CommonName {
		t.Errorf("Status().CA = %+v, want the CA's subject and fingerprint", st.CA)
	}
	leaf := served(t, m, "hearth.local")
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA ||
		leaf.NotAfter.Sub(leaf.NotBefore) > certs.DefaultLeafLifetime+time.Hour {
		t.Errorf("leaf: ExtKeyUsage %v, IsCA %v, lifetime %s", leaf.ExtKeyUsage, leaf.IsCA, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	// The name constraints hold for clients too: a certificate the CA key
	// signed for a bank does not verify.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool(t, m), DNSName: "hearth.local"}); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}
}

func TestHandshakeBeforeStart(t *testing.T) {
	m := newManager(t, certs.Config{})
	_, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "hearth.local"})
	if !errors.Is(err, certs.ErrNotStarted) {
		t.Fatalf("GetCertificate before Start = %v, want ErrNotStarted", err)
	}
	if m.CACertPEM() != nil {
		t.Fatal("CACertPEM before Start is not nil")
	}
	if st := m.Status(); st.Ready {
		t.Fatalf("Status before Start = %+v, want not ready", st)
	}
}

func TestSetNames(t *testing.T) {
	m := startManager(t, certs.Config{Names: []string{"hearth.local", "192.168.1.20"}})
	pool := caPool(t, m)
	ctx := context.Background()

	if err := m.SetNames(ctx, []string{"192.168.1.21", "hearth.tail1234.ts.net"}); err != nil {
		t.Fatalf("SetNames = %v", err)
	}
	for _, name := range []string{"hearth.local", "hearth.tail1234.ts.net"} {
		if _, err := served(t, m, name).Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("after SetNames, %s: %v", name, err)
		}
	}
	// The dropped address now gets the primary name's certificate.
	if got := served(t, m, "192.168.1.20"); !slices.Contains(got.DNSNames, "hearth.local") {
		t.Errorf("dropped name is served %v, want the primary's certificate", got.DNSNames)
	}
	var names []string
	for _, c := range m.Status().Certificates {
		names = append(names, c.Name)
	}
	if want := []string{"hearth.local", "192.168.1.21", "hearth.tail1234.ts.net"}; !slices.Equal(names, want) {
		t.Errorf("Status names after SetNames = %q, want %q", names, want)
	}
	if err := m.SetNames(ctx, []string{"bad name"}); err == nil {
		t.Error("SetNames with a bad name = nil, want an error")
	}
	if err := m.SetNames(ctx, []string{"hearth.example.com"}); !errors.Is(err, certs.ErrNameNotPermitted) {
		t.Errorf("SetNames outside the CA's domains = %v, want ErrNameNotPermitted", err)
	}
}

// TestCloseStopsEverything checks that Close ends every goroutine the
// Manager and certmagic started, and is idempotent.
func TestCloseStopsEverything(t *testing.T) {
	m := startManager(t, certs.Config{})
	served(t, m, "hearth.local")
	if err := m.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	checkNoLeaks(t)
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("Start after Close = nil, want an error")
	}
}
