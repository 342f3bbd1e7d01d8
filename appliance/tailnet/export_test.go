//go:build !hearth_notailnet

package tailnet

import (
	"context"
	"crypto/tls"
	"time"
)

// SetCertFetch replaces how n gets certificates from tsnet (offline tests
// cannot reach an ACME CA).
func SetCertFetch(n *Node, fetch func(ctx context.Context, name string) (*tls.Certificate, error)) {
	n.certs.mu.Lock()
	defer n.certs.mu.Unlock()
	n.certs.fetch = fetch
}

// SetCertClock replaces the certificate cache's clock.
func SetCertClock(n *Node, now func() time.Time) {
	n.certs.mu.Lock()
	defer n.certs.mu.Unlock()
	n.certs.now = now
}

// SetAuthKeyFromEnv replaces how Config reads TS_AUTHKEY.
func SetAuthKeyFromEnv(cfg *Config, f func() string) { cfg.authKeyFromEnv = f }

const (
	CertRecheck = certRecheck
	CertRetry   = certRetry
)
