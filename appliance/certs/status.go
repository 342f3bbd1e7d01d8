package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// Status is the state of Hearth's certificates, for /readyz, the admin UI
// and `hearth doctor`.
type Status struct {
	Mode Mode `json:"mode"`
	// Ready is true when Start has succeeded and every local name (and, in
	// ModeACME, every ACME domain) has an unexpired certificate.
	Ready bool `json:"ready"`
	// CA describes the local CA (nil before Start has loaded it).
	CA *CAStatus `json:"ca,omitempty"`
	// Certificates lists each name with where its certificate comes from.
	// In ModeTailnet a *.ts.net name appears twice: from the tailnet and from
	// the local CA (the fallback).
	Certificates []CertStatus `json:"certificates"`
	// Error is why Start failed, or else the most recent failure of any
	// name still listed; "" when all is well.
	Error string `json:"error,omitempty"`
}

// CAStatus describes the local CA.
type CAStatus struct {
	Subject string `json:"subject"`
	// SHA256 is the certificate's fingerprint, as devices show it, so that a
	// person can check what they are about to trust.
	SHA256   string    `json:"sha256"`
	NotAfter time.Time `json:"not_after"`
}

// CertStatus is one name's certificate.
type CertStatus struct {
	Name   string `json:"name"`
	Source string `json:"source"` // SourceLocal, SourceACME or SourceTailnet
	// NotAfter is when the certificate being served expires; zero when
	// there is none (yet).
	NotAfter time.Time `json:"not_after,omitzero"`
	// Error is the last failure to get a certificate for the name, cleared
	// by the next success.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
}

type nameError struct {
	msg string
	at  time.Time
}

// tailnetState remembers what the tailnet hook last did, per name.
type tailnetState map[string]tailnetEntry

type tailnetEntry struct {
	cert     *tls.Certificate
	notAfter time.Time
	err      nameError
}

func (m *Manager) recordError(source, name string, err error) {
	if err == nil {
		return
	}
	m.mu.Lock()
	m.errs[source+" "+name] = nameError{msg: err.Error(), at: time.Now()}
	m.mu.Unlock()
}

func (m *Manager) clearError(source, name string) {
	m.mu.Lock()
	delete(m.errs, source+" "+name)
	m.mu.Unlock()
}

// onEvent turns certmagic's events for one source into logs and status.
func (m *Manager) onEvent(source string) func(context.Context, string, map[string]any) error {
	return func(_ context.Context, event string, data map[string]any) error {
		name, _ := data["identifier"].(string)
		renewal, _ := data["renewal"].(bool)
		switch event {
		case "cert_obtaining":
			m.log.Info("obtaining certificate", "name", name, "source", source, "renewal", renewal)
		case "cert_obtained":
			m.clearError(source, name)
			m.log.Info("certificate obtained", "name", name, "source", source, "renewal", renewal)
		case "cert_failed":
			err, _ := data["error"].(error)
			m.recordError(source, name, err)
			m.log.Error("could not obtain certificate", "name", name, "source", source, "renewal", renewal, "err", err)
		case "cert_ocsp_revoked":
			m.log.Warn("certificate was revoked; replacing it", "source", source, "names", data["subjects"])
		case "cached_managed_cert":
			m.log.Debug("certificate loaded", "source", source, "names", data["sans"])
		}
		return nil
	}
}

// noteTailnet records the outcome of a tailnet hook call. It parses a
// certificate only when it differs from the last one, and logs a failure
// only when the hook starts failing.
func (m *Manager) noteTailnet(name string, c *tls.Certificate, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tailnet == nil {
		m.tailnet = tailnetState{}
	}
	e := m.tailnet[name]
	if err != nil {
		if e.err.msg == "" {
			m.log.Warn("tailnet certificate unavailable; serving the local CA's", "name", name, "err", err)
		}
		e.err = nameError{msg: err.Error(), at: time.Now()}
		m.tailnet[name] = e
		return
	}
	e.err = nameError{}
	if c != e.cert {
		e.cert = c
		leaf := c.Leaf
		if leaf == nil && len(c.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		if leaf != nil {
			e.notAfter = leaf.NotAfter
		}
	}
	m.tailnet[name] = e
}

// notAfter is the latest expiry among the cached certificates for name.
func notAfter(c *certmagic.Cache, name string) time.Time {
	var t time.Time
	if c == nil {
		return t
	}
	for _, cert := range c.AllMatchingCertificates(name) {
		if cert.Leaf != nil && cert.Leaf.NotAfter.After(t) {
			t = cert.Leaf.NotAfter
		}
	}
	return t
}

// Status reports the certificates' state.
func (m *Manager) Status() Status {
	now := time.Now()
	st := Status{Mode: m.cfg.Mode, Certificates: []CertStatus{}}
	if ca := m.issuer.ca.Load(); ca != nil {
		st.CA = &CAStatus{Subject: ca.cert.Subject.CommonName, SHA256: Fingerprint(ca.cert.Raw), NotAfter: ca.cert.NotAfter}
	}
	m.mu.Lock()
	names := slices.Clone(m.names)
	errs := make(map[string]nameError, len(m.errs))
	for k, v := range m.errs {
		errs[k] = v
	}
	tailnet := make(tailnetState, len(m.tailnet))
	for k, v := range m.tailnet {
		tailnet[k] = v
	}
	started, startErr := m.started, m.startErr
	m.mu.Unlock()

	srv := m.serving.Load()
	var localCache, acmeCache *certmagic.Cache
	if srv != nil {
		localCache, acmeCache = srv.localCache, srv.acmeCache
	}
	ready := started && startErr == nil && srv != nil
	var latest nameError
	add := func(cs CertStatus, e nameError, counts bool) {
		cs.Error, cs.ErrorAt = e.msg, e.at
		if e.at.After(latest.at) {
			latest = e
		}
		if counts && !cs.NotAfter.After(now) {
			ready = false
		}
		st.Certificates = append(st.Certificates, cs)
	}
	for _, n := range names {
		if m.cfg.Mode == ModeTailnet && strings.HasSuffix(n, ".ts.net") {
			t := tailnet[n]
			add(CertStatus{Name: n, Source: SourceTailnet, NotAfter: t.notAfter}, t.err, false)
		}
		add(CertStatus{Name: n, Source: SourceLocal, NotAfter: notAfter(localCache, n)}, errs[SourceLocal+" "+n], true)
	}
	if m.cfg.Mode == ModeACME {
		for _, d := range m.cfg.ACME.Domains {
			add(CertStatus{Name: d, Source: SourceACME, NotAfter: notAfter(acmeCache, d)}, errs[SourceACME+" "+d], true)
		}
	}
	st.Ready = ready
	switch {
	case startErr != nil:
		st.Error = startErr.Error()
	case latest.msg != "":
		st.Error = latest.msg
	}
	return st
}
