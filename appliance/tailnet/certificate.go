//go:build !hearth_notailnet

package tailnet

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// certRecheck is how long a certificate is served from memory before
	// tsnet is asked again; tsnet renews it in the background when due.
	certRecheck = time.Hour
	// certRetry is how long after a failed fetch the next one may start;
	// meanwhile GetCertificate returns the failure at once.
	certRetry = time.Minute
	// certFetchTimeout bounds one fetch (an ACME order with a DNS-01
	// challenge can take a while).
	certFetchTimeout = 3 * time.Minute
)

// GetCertificate returns the tailnet's certificate (from Let's Encrypt, via
// the coordination server's DNS-01 challenge) for the node's MagicDNS name,
// fetching it on first use and keeping it renewed. It is a
// tls.Config.GetCertificate: hand it to the certs package as its tailnet
// hook (TLS mode tailnet). For any other server name, or when the tailnet
// has HTTPS certificates turned off, it fails at once with
// ErrNoCertificate, so the caller can serve its own certificate instead. A
// handshake that comes while the first fetch runs waits for it, as long as
// the handshake's context allows.
func (n *Node) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hi.ServerName, "."))
	if name == "" {
		return nil, fmt.Errorf("%w: the client sent no server name", ErrNoCertificate)
	}
	if c := n.certs.cached(name); c != nil {
		return c, nil
	}
	n.mu.Lock()
	st, closed := n.status, n.closed
	n.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case slices.Contains(st.CertDomains, name):
	case st.State != StateRunning:
		return nil, fmt.Errorf("tailnet certificate for %s: %w", name, ErrNotRunning)
	case len(st.CertDomains) == 0:
		return nil, fmt.Errorf("tailnet certificate for %s: %w: HTTPS certificates are off for the tailnet (turn them on in its admin console, DNS page)", name, ErrNoCertificate)
	default:
		return nil, fmt.Errorf("tailnet certificate for %s: %w (it certifies %s)", name, ErrNoCertificate, strings.Join(st.CertDomains, ", "))
	}
	ctx := hi.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return n.certs.get(ctx, n, name)
}

// TLSConfig returns a TLS configuration that serves the tailnet's
// certificate (GetCertificate) with HTTP/2 and HTTP/1.1, for a listener
// that serves only the tailnet name.
func (n *Node) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: n.GetCertificate, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
}

// fetchCertificate asks tsnet for the certificate and key of name.
func (n *Node) fetchCertificate(ctx context.Context, name string) (*tls.Certificate, error) {
	_, lc, err := n.server()
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := lc.CertPair(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return &c, nil
}

// certCache keeps the parsed certificates in memory, so a handshake costs
// no call into tsnet, and runs one fetch per name at a time.
type certCache struct {
	fetch func(ctx context.Context, name string) (*tls.Certificate, error)
	now   func() time.Time // nil: time.Now

	mu      sync.Mutex
	entries map[string]*certEntry
}

type certEntry struct {
	cert     *tls.Certificate // nil until fetched
	checked  time.Time        // when cert was last fetched
	err      error            // the last fetch's failure, nil after a success
	failed   time.Time        // when it failed
	inflight chan struct{}    // non-nil while a fetch runs; closed when it ends
}

func (c *certCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *certCache) entry(name string) *certEntry {
	if c.entries == nil {
		c.entries = map[string]*certEntry{}
	}
	e := c.entries[name]
	if e == nil {
		e = &certEntry{}
		c.entries[name] = e
	}
	return e
}

// usable reports whether e's certificate may still be served at now.
func (e *certEntry) usable(now time.Time) bool {
	return e.cert != nil && e.cert.Leaf != nil && now.Before(e.cert.Leaf.NotAfter)
}

// cached returns a fresh certificate for name without any fetch, or nil.
func (c *certCache) cached(name string) *tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[name]
	if e == nil || !e.usable(c.clock()) || c.clock().Sub(e.checked) >= certRecheck {
		return nil
	}
	return e.cert
}

// get returns name's certificate: a fresh one from memory; a valid one due
// for a recheck at once, with the recheck started in the background; or,
// with none to serve, the outcome of a fetch (waited for while ctx allows).
func (c *certCache) get(ctx context.Context, n *Node, name string) (*tls.Certificate, error) {
	if n.life.Err() != nil {
		return nil, fmt.Errorf("tailnet certificate for %s: %w", name, ErrClosed)
	}
	c.mu.Lock()
	e := c.entry(name)
	now := c.clock()
	if e.usable(now) {
		if now.Sub(e.checked) >= certRecheck {
			c.startLocked(n, name, e)
		}
		cert := e.cert
		c.mu.Unlock()
		return cert, nil
	}
	if e.inflight == nil && e.err != nil && now.Sub(e.failed) < certRetry {
		err := e.err
		c.mu.Unlock()
		return nil, err
	}
	if err := c.startLocked(n, name, e); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	done := e.inflight
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("tailnet certificate for %s: still being fetched: %w", name, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.usable(c.clock()) {
		return e.cert, nil
	}
	if e.err != nil {
		return nil, e.err
	}
	return nil, fmt.Errorf("tailnet certificate for %s: %w", name, ErrClosed)
}

// prefetch starts fetching name's certificate unless one is fresh or
// being fetched.
func (c *certCache) prefetch(n *Node, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(name)
	if e.usable(c.clock()) && c.clock().Sub(e.checked) < certRecheck {
		return
	}
	_ = c.startLocked(n, name, e)
}

// startLocked starts a fetch for e unless one runs. c.mu is held.
func (c *certCache) startLocked(n *Node, name string, e *certEntry) error {
	if e.inflight != nil {
		return nil
	}
	inflight, fetch := make(chan struct{}), c.fetch
	ok := n.goBackground(func() {
		ctx, cancel := context.WithTimeout(n.life, certFetchTimeout)
		defer cancel()
		start := time.Now()
		cert, err := fetch(ctx, name)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case err != nil && n.life.Err() != nil:
			e.err = fmt.Errorf("tailnet certificate for %s: %w", name, ErrClosed)
		case err != nil:
			e.err = fmt.Errorf("tailnet certificate for %s: %w", name, err)
			e.failed = c.clock()
			n.log.Warn("could not get the tailnet's certificate", "name", name, "err", err)
		default:
			if cert.Leaf == nil {
				e.err = fmt.Errorf("tailnet certificate for %s: no parsed leaf", name)
				e.failed = c.clock()
			} else {
				if e.cert == nil || !e.cert.Leaf.Equal(cert.Leaf) {
					n.log.Info("tailnet certificate ready", "name", name, "not_after", cert.Leaf.NotAfter, "took", time.Since(start).Round(time.Millisecond))
				}
				e.cert, e.checked, e.err = cert, c.clock(), nil
			}
		}
		close(e.inflight)
		e.inflight = nil
	}, func() { e.inflight = inflight })
	// (n.mu is taken inside c.mu only here, never the other way round.)
	if !ok {
		return ErrClosed
	}
	return nil
}
