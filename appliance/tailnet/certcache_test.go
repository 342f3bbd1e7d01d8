//go:build !hearth_notailnet

package tailnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFetch hands out certificates valid until notAfter, or fails, and
// counts the calls; release, when set, holds every fetch until closed.
type fakeFetch struct {
	calls    atomic.Int32
	mu       sync.Mutex
	notAfter time.Time
	fail     error
	release  chan struct{}
}

func (f *fakeFetch) fetch(ctx context.Context, name string) (*tls.Certificate, error) {
	f.calls.Add(1)
	f.mu.Lock()
	release, fail, notAfter := f.release, f.fail, f.notAfter
	f.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	return &tls.Certificate{Leaf: &x509.Certificate{NotAfter: notAfter, DNSNames: []string{name}, Raw: []byte(notAfter.String())}}, nil
}

// TestCertCache: the certificate cache serves from memory, rechecks an
// hour later without making a handshake wait, waits out a retry delay
// after a failure, shares one fetch among concurrent handshakes, and never
// serves an expired certificate.
func TestCertCache(t *testing.T) {
	const name = "hearth.tail1234.ts.net"
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	f := &fakeFetch{notAfter: now.Add(90 * 24 * time.Hour)}
	n, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.certs.fetch, n.certs.now = f.fetch, clock
	ctx := context.Background()
	get := func() (*tls.Certificate, error) { return n.certs.get(ctx, n, name) }
	waitIdle := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			n.certs.mu.Lock()
			busy := n.certs.entries[name].inflight != nil
			n.certs.mu.Unlock()
			if !busy {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("a fetch never ended")
			}
		}
	}

	// First use: fetched, then served from memory.
	if c, err := get(); err != nil || c == nil {
		t.Fatalf("first get = %v", err)
	}
	get()
	if c := n.certs.cached(name); c == nil || f.calls.Load() != 1 {
		t.Fatalf("after two gets: %d fetches, cached %v; want 1 and cached", f.calls.Load(), c != nil)
	}

	// An hour later: the old certificate at once, a recheck behind it.
	advance(certRecheck)
	f.mu.Lock()
	f.release = make(chan struct{})
	f.notAfter = now.Add(100 * 24 * time.Hour)
	f.mu.Unlock()
	start := time.Now()
	if c, err := get(); err != nil || c.Leaf.NotAfter.Sub(now) > 95*24*time.Hour {
		t.Fatalf("get due for a recheck = %v, want the old certificate", err)
	}
	if time.Since(start) > time.Second {
		t.Error("a handshake waited for the recheck")
	}
	close(f.release)
	waitIdle()
	if c := n.certs.cached(name); c == nil || c.Leaf.NotAfter.Sub(now) < 95*24*time.Hour || f.calls.Load() != 2 {
		t.Fatalf("after the recheck: %d fetches, cached %v; want the new certificate", f.calls.Load(), c)
	}

	// Expired and failing: not served; the failure is repeated without a
	// fetch until the retry delay passes.
	advance(101 * 24 * time.Hour)
	f.mu.Lock()
	f.release, f.fail = nil, errors.New("acme: rate limited")
	f.mu.Unlock()
	if c, err := get(); err == nil || c != nil {
		t.Fatalf("get with an expired certificate and a failing fetch = %v, %v", c, err)
	}
	calls := f.calls.Load()
	if _, err := get(); err == nil || f.calls.Load() != calls {
		t.Errorf("get within the retry delay: %v, %d fetches; want the failure without a fetch", err, f.calls.Load()-calls)
	}
	advance(certRetry)
	f.mu.Lock()
	f.fail, f.notAfter = nil, now.Add(90*24*time.Hour)
	f.release = make(chan struct{})
	f.mu.Unlock()

	// Concurrent handshakes share the one fetch.
	calls = f.calls.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := get()
			errs <- err
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(f.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent get = %v", err)
		}
	}
	if got := f.calls.Load() - calls; got != 1 {
		t.Errorf("10 concurrent gets made %d fetches, want 1", got)
	}

	// A handshake that gives up stops waiting; Close ends the fetch.
	advance(91 * 24 * time.Hour)
	f.mu.Lock()
	f.release = make(chan struct{})
	f.mu.Unlock()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := n.certs.get(short, n, name); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get with a handshake deadline = %v, want the deadline", err)
	}
	n.Close()
	if _, err := get(); !errors.Is(err, ErrClosed) {
		t.Errorf("get after Close = %v, want ErrClosed", err)
	}
}
