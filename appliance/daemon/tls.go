package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/store"
)

// CertKV keeps the certs package's records in the store's certs bucket.
type CertKV struct{ St *store.Store }

// Get implements certs.KV.
func (k CertKV) Get(key string) (v []byte, err error) {
	err = k.St.View(func(tx *store.Tx) error { v, err = tx.GetRaw(store.BucketCerts, key); return err })
	return v, err
}

// Put implements certs.KV.
func (k CertKV) Put(key string, v []byte) error {
	return k.St.Update(func(tx *store.Tx) error { return tx.PutRaw(store.BucketCerts, key, v) })
}

// Delete implements certs.KV.
func (k CertKV) Delete(key string) error {
	return k.St.Update(func(tx *store.Tx) error { return tx.Delete(store.BucketCerts, key) })
}

// List implements certs.KV.
func (k CertKV) List(prefix string) (keys []string, err error) {
	err = k.St.View(func(tx *store.Tx) error {
		return tx.EachRaw(store.BucketCerts, prefix, func(key string, _ []byte) error {
			keys = append(keys, key)
			return nil
		})
	})
	return keys, err
}

// tlsNames are the names and addresses the local certificate covers: the
// mDNS name, localhost, and every address of this machine.
func tlsNames(name string) []string {
	names := []string{name + ".local", "localhost"}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLinkLocalUnicast() {
			names = append(names, p.Addr().String())
		}
	}
	return names
}

// newCerts builds the certificate manager for the configured TLS mode, or
// nil when TLS is off.
func (d *Daemon) newCerts() (*certs.Manager, error) {
	var mode certs.Mode
	switch d.cfg.TLS {
	case config.TLSOff:
		return nil, nil
	case config.TLSLocal:
		mode = certs.ModeLocal
	case config.TLSACME:
		mode = certs.ModeACME
	case config.TLSTailnet:
		mode = certs.ModeTailnet
	default:
		return nil, fmt.Errorf("unknown tls mode %q", d.cfg.TLS)
	}
	cfg := certs.Config{Mode: mode, KV: CertKV{St: d.store}, Names: d.certNames(),
		Logger: d.log.With("component", "certs")}
	switch mode {
	case certs.ModeACME:
		if d.cfg.ACMEDomain == "" {
			return nil, fmt.Errorf("tls mode acme needs acme_domain (the public name to certify)")
		}
		cfg.ACME = certs.ACMEConfig{Domains: []string{d.cfg.ACMEDomain}, DirectoryURL: d.cfg.ACMEDirectory, Email: d.cfg.ACMEEmail,
			HTTPPort: portOf(d.cfg.HTTPListen, 80), TLSPort: portOf(d.cfg.Listen, 443)}
	case certs.ModeTailnet:
		if d.tailnet == nil {
			return nil, errors.New("tls mode tailnet needs the tailnet: set tailnet = true (--tailnet), or use --tls local")
		}
		// The *.ts.net name from the tailnet's certificate (Let's
		// Encrypt); every other name, and the tailnet name while that
		// certificate is not there, from the local CA.
		cfg.TailnetGetCertificate = d.tailnet.node.GetCertificate
	}
	return certs.New(cfg)
}

// certNames are the names the local CA certifies at start: the public
// domain (tls = acme) first, then tlsNames. The tailnet's name and
// addresses are added once the node is up (followTailnetNames).
func (d *Daemon) certNames() []string {
	names := tlsNames(d.cfg.Name)
	if d.cfg.TLS == config.TLSACME && d.cfg.ACMEDomain != "" {
		names = append([]string{d.cfg.ACMEDomain}, names...)
	}
	return names
}

func portOf(addr string, def int) int {
	_, p, err := net.SplitHostPort(addr)
	if n, err2 := strconv.Atoi(p); err == nil && err2 == nil && n > 0 {
		return n
	}
	return def
}

// ResetCA forgets the local CA so the next start makes a new one. Every
// device must then trust the new CA. The daemon must not be running.
func ResetCA(ctx context.Context, st *store.Store) error {
	return certs.ResetCA(ctx, CertKV{St: st})
}
