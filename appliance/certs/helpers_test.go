package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

// logBuffer collects a test's log lines and prints them if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger logs at Debug into a buffer that is printed when t fails.
// (Writing to t.Log directly would panic when certmagic's goroutines log
// after the test has ended.)
func testLogger(t testing.TB) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// newManager builds a Manager with test defaults filled in and closes it
// when the test ends.
func newManager(t testing.TB, cfg certs.Config) *certs.Manager {
	t.Helper()
	if cfg.KV == nil {
		cfg.KV = certstest.NewMemKV()
	}
	if cfg.Names == nil {
		cfg.Names = []string{"hearth.local", "localhost", "127.0.0.1"}
	}
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger(t)
	}
	m, err := certs.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func startManager(t testing.TB, cfg certs.Config) *certs.Manager {
	t.Helper()
	m := newManager(t, cfg)
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return m
}

// caPool is a pool holding only the Manager's CA certificate.
func caPool(t testing.TB, m *certs.Manager) *x509.CertPool {
	t.Helper()
	pem := m.CACertPEM()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CACertPEM() = %q, not a PEM certificate", pem)
	}
	return pool
}

// serveTLS serves "ok" over HTTPS with cfg on a loopback listener until the
// test ends, and returns its address.
func serveTLS(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		ErrorLog: slogDiscard(),
	}
	srv.TLSConfig = cfg
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// serveHTTP serves h over plain HTTP on a loopback listener until the test
// ends, and returns its address.
func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: slogDiscard()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func slogDiscard() *log.Logger { return slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug) }

// handshake dials addr and completes a TLS handshake as serverName,
// trusting only roots, and returns the server's leaf certificate.
func handshake(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// served returns the leaf certificate the Manager picks for hello, without
// a network.
func served(t testing.TB, m *certs.Manager, serverName string) *x509.Certificate {
	t.Helper()
	c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: serverName})
	if err != nil {
		t.Fatalf("GetCertificate(%q) = %v", serverName, err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// checkNoLeaks fails if goroutines of this package or certmagic are still
// running shortly after the Manager closed. certmagic's ACME rate limiters
// are process-wide (one per CA and account, kept for reuse) and are not
// counted.
func checkNoLeaks(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var leaked []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if (strings.Contains(g, "caddyserver/certmagic") || strings.Contains(g, "appliance/certs.(*")) &&
				!strings.Contains(g, "certmagic.(*RingBufferRateLimiter)") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running after Close:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond every 10ms until it holds or 30s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
