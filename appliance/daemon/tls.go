package daemon

import (
	"context"
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
	default:
		return nil, fmt.Errorf("tls mode %q needs the tailnet, which this build does not join yet; use --tls local", d.cfg.TLS)
	}
	cfg := certs.Config{Mode: mode, KV: CertKV{St: d.store}, Names: tlsNames(d.cfg.Name),
		Logger: d.log.With("component", "certs")}
	if mode == certs.ModeACME {
		if d.cfg.ACMEDomain == "" {
			return nil, fmt.Errorf("tls mode acme needs acme_domain (the public name to certify)")
		}
		cfg.ACME = certs.ACMEConfig{Domains: []string{d.cfg.ACMEDomain}, DirectoryURL: d.cfg.ACMEDirectory, Email: d.cfg.ACMEEmail,
			HTTPPort: portOf(d.cfg.HTTPListen, 80), TLSPort: portOf(d.cfg.Listen, 443)}
		cfg.Names = append([]string{d.cfg.ACMEDomain}, cfg.Names...)
	}
	return certs.New(cfg)
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
