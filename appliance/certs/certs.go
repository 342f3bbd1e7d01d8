package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Mode is where the served certificates come from.
type Mode string

// Modes. The names match the --tls flag values.
const (
	// ModeLocal serves every name from the local CA.
	ModeLocal Mode = "local"
	// ModeACME serves ACMEConfig.Domains from an ACME CA and the other names
	// from the local CA.
	ModeACME Mode = "acme"
	// ModeTailnet serves *.ts.net names from Config.TailnetGetCertificate,
	// falling back to the local CA, and the other names from the local CA.
	ModeTailnet Mode = "tailnet"
)

// Defaults for zero Config fields.
const (
	DefaultCAName       = "Hearth local CA"
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour
	DefaultLeafLifetime = 30 * 24 * time.Hour
	// DefaultRenewCheckInterval is how often certificates are checked for
	// renewal. A certificate is renewed when a third of its lifetime is left.
	DefaultRenewCheckInterval = 10 * time.Minute
	// LetsEncryptDirectory is the default ACME directory.
	LetsEncryptDirectory = certmagic.LetsEncryptProductionCA
)

// Certificate sources, as reported in CertStatus.Source.
const (
	SourceLocal   = "local"
	SourceACME    = "acme"
	SourceTailnet = "tailnet"
)

// acmeTLS1 is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLS1 = "acme-tls/1"

// DefaultCADomains returns the DNS domains a new local CA may certify when
// Config.CADomains adds none: the suffixes home networks use (mDNS .local,
// localhost, RFC 8375 home.arpa, .internal, the common router suffixes .lan
// and .home) and tailnet names (ts.net). Each covers its subdomains. IP
// addresses are not constrained.
func DefaultCADomains() []string {
	return []string{"local", "localhost", "home.arpa", "internal", "lan", "home", "ts.net"}
}

// defaultClockFloor is the earliest time the clock may plausibly read.
func defaultClockFloor() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// Mode chooses where certificates come from; "" means ModeLocal.
	Mode Mode
	// KV stores the CA, certificates, keys, the ACME account and locks.
	// Required.
	KV KV
	// Names are served with certificates from the local CA, in every mode:
	// the mDNS name ("hearth.local"), "localhost", LAN addresses, the tailnet
	// name. Names[0] is the primary name: it is served to clients that send
	// no server name (or one Hearth has no certificate for) and is always
	// kept. At least one is required.
	Names []string
	// CAName prefixes the local CA's subject; a short key ID follows it.
	// "" means DefaultCAName.
	CAName string
	// CADomains are DNS domains the local CA may certify besides
	// DefaultCADomains (its name constraints). They apply when a CA is made;
	// an existing CA keeps its constraints.
	CADomains []string
	// CALifetime is the validity of a new local CA certificate; zero means
	// DefaultCALifetime.
	CALifetime time.Duration
	// LeafLifetime is the validity of certificates from the local CA; zero
	// means DefaultLeafLifetime.
	LeafLifetime time.Duration
	// RenewCheckInterval is how often certificates are checked for renewal;
	// zero means DefaultRenewCheckInterval.
	RenewCheckInterval time.Duration
	// ClockFloor is the earliest time the system clock may plausibly read:
	// before it, Start refuses to make a CA or certificates (they would be
	// useless once the clock is set). Zero means 2025-01-01.
	ClockFloor time.Time
	// ACME configures ModeACME; it is ignored in the other modes.
	ACME ACMEConfig
	// TailnetGetCertificate supplies certificates for *.ts.net names in
	// ModeTailnet (from the tailnet package); required in that mode. When it
	// fails, the local CA's certificate for the name is served instead if
	// the name is among Names.
	TailnetGetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Logger receives certificate events and certmagic's own logs (its Info
	// lines at Debug). nil: discard.
	Logger *slog.Logger
}

// ACMEConfig configures certificates from an ACME CA.
type ACMEConfig struct {
	// Domains are the public names to certify. Required in ModeACME.
	Domains []string
	// DirectoryURL is the CA's ACME directory; "" means LetsEncryptDirectory.
	DirectoryURL string
	// Email is given to the CA for expiry and account notices; may be "".
	// Using ACME means agreeing to the CA's subscriber agreement.
	Email string
	// RootCAs verifies the CA's HTTPS endpoint; nil means the system roots.
	RootCAs *x509.CertPool
	// ListenHost, HTTPPort and TLSPort are where the plain-HTTP server
	// (wrapped in HTTPChallengeHandler) and the HTTPS server (using
	// TLSConfig) listen; zero ports mean 80 and 443. Start must run after
	// both are bound: challenges are then answered by them.
	ListenHost string
	HTTPPort   int
	TLSPort    int
	// DisableHTTPChallenge and DisableTLSALPNChallenge turn off a challenge
	// type (when its port is not reachable from the internet).
	DisableHTTPChallenge    bool
	DisableTLSALPNChallenge bool
}

// Manager obtains, stores, renews and serves Hearth's certificates. Build it
// with New, call Start once, and Close when done. It is safe for concurrent
// use.
type Manager struct {
	cfg        Config
	log        *slog.Logger
	zl         *zap.Logger
	storage    *Storage
	issuer     *localIssuer
	primary    string
	domains    map[string]bool // ACME domains
	floor      time.Time
	caName     string
	caLife     time.Duration
	caDomains  []string
	renewEvery time.Duration

	acmeIssuer atomic.Pointer[certmagic.ACMEIssuer]
	serving    atomic.Pointer[serving]

	opMu sync.Mutex // serializes Start, SetNames and Close

	mu       sync.Mutex
	names    []string
	started  bool
	closed   bool
	cancel   context.CancelFunc
	caches   []*certmagic.Cache
	errs     map[string]nameError // source + " " + name → last failure
	startErr error
	tailnet  tailnetState
}

// serving is what handshakes use once Start has run.
type serving struct {
	local      *certmagic.Config
	localCache *certmagic.Cache
	acme       *certmagic.Config // nil unless ModeACME
	acmeCache  *certmagic.Cache
}

// New checks cfg and builds a Manager. Nothing is read, written or started
// until Start.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	names, err := normalizeNames(cfg.Names)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	m := &Manager{
		cfg:        cfg,
		log:        cfg.Logger,
		primary:    names[0],
		names:      names,
		domains:    map[string]bool{},
		floor:      cfg.ClockFloor,
		caName:     cfg.CAName,
		caLife:     cfg.CALifetime,
		renewEvery: cfg.RenewCheckInterval,
		errs:       map[string]nameError{},
	}
	if m.cfg.Mode == "" {
		m.cfg.Mode = ModeLocal
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.zl = newZapLogger(m.log.With("lib", "certmagic"))
	if m.floor.IsZero() {
		m.floor = defaultClockFloor()
	}
	if m.caName == "" {
		m.caName = DefaultCAName
	}
	if m.caLife == 0 {
		m.caLife = DefaultCALifetime
	}
	if m.renewEvery == 0 {
		m.renewEvery = DefaultRenewCheckInterval
	}
	leaf := cfg.LeafLifetime
	if leaf == 0 {
		leaf = DefaultLeafLifetime
	}
	m.caDomains = DefaultCADomains()
	for _, d := range cfg.CADomains {
		d = strings.ToLower(strings.Trim(strings.TrimSpace(d), "."))
		if d != "" && !slices.Contains(m.caDomains, d) {
			m.caDomains = append(m.caDomains, d)
		}
	}
	if m.cfg.Mode == ModeACME {
		ds, err := normalizeNames(cfg.ACME.Domains)
		if err != nil {
			return nil, fmt.Errorf("certs: acme domains: %w", err)
		}
		m.cfg.ACME.Domains = ds
		for _, d := range ds {
			m.domains[d] = true
		}
	}
	m.issuer = &localIssuer{lifetime: leaf}
	m.storage, err = NewStorage(StorageConfig{KV: cfg.KV, Logger: m.log})
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return m, nil
}

func (c *Config) validate() error {
	switch c.Mode {
	case "", ModeLocal, ModeACME, ModeTailnet:
	default:
		return fmt.Errorf("unknown TLS mode %q (want local, acme or tailnet)", c.Mode)
	}
	if c.KV == nil {
		return errors.New("no KV to keep certificates in")
	}
	if len(c.Names) == 0 {
		return errors.New("no names to serve (want at least the mDNS name, e.g. hearth.local)")
	}
	if c.CALifetime < 0 || c.LeafLifetime < 0 || c.RenewCheckInterval < 0 {
		return errors.New("lifetimes and intervals must not be negative")
	}
	ca, leaf := c.CALifetime, c.LeafLifetime
	if ca == 0 {
		ca = DefaultCALifetime
	}
	if leaf == 0 {
		leaf = DefaultLeafLifetime
	}
	if leaf >= ca {
		return fmt.Errorf("leaf lifetime %s must be shorter than the CA lifetime %s", leaf, ca)
	}
	switch c.Mode {
	case ModeACME:
		a := c.ACME
		if len(a.Domains) == 0 {
			return errors.New("acme mode needs at least one domain")
		}
		if a.DirectoryURL != "" {
			u, err := url.Parse(a.DirectoryURL)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return fmt.Errorf("acme directory %q is not an https:// URL", a.DirectoryURL)
			}
		}
		if a.Email != "" && !strings.Contains(a.Email, "@") {
			return fmt.Errorf("acme e-mail %q is not an e-mail address", a.Email)
		}
		if a.HTTPPort < 0 || a.HTTPPort > 65535 || a.TLSPort < 0 || a.TLSPort > 65535 {
			return errors.New("acme challenge ports must be 0 to 65535")
		}
		if a.DisableHTTPChallenge && a.DisableTLSALPNChallenge {
			return errors.New("acme needs the HTTP-01 or the TLS-ALPN-01 challenge; both are disabled")
		}
	case ModeTailnet:
		if c.TailnetGetCertificate == nil {
			return errors.New("tailnet mode needs TailnetGetCertificate")
		}
	}
	return nil
}

// normalizeNames lower-cases, checks and de-duplicates names, keeping order.
func normalizeNames(in []string) ([]string, error) {
	var out []string
	for _, n := range in {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		} else if n == "" || strings.Contains(n, "*") || !certmagic.SubjectQualifiesForCert(n) {
			return nil, fmt.Errorf("%q is not a host name or IP address", n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no names")
	}
	return out, nil
}

// Start loads (on first run, makes) the local CA, loads or obtains a
// certificate for every name and starts renewing them in the background;
// ACME certificates are obtained in the background too (see Status). ctx
// bounds the start-up work only. Start returns an error when the local CA
// is unusable or the primary name has no certificate; failures for other
// names are logged and reported by Status.
func (m *Manager) Start(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.started || m.closed {
		m.mu.Unlock()
		return errors.New("certs: Start called twice or after Close")
	}
	m.started = true
	m.mu.Unlock()

	err := m.start(ctx)
	m.mu.Lock()
	m.startErr = err
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func (m *Manager) start(ctx context.Context) error {
	now := time.Now()
	if now.Before(m.floor) {
		return fmt.Errorf("%w: it reads %s; Hearth makes no certificates until the time is set (is NTP working?)",
			ErrClockWrong, now.UTC().Format(time.RFC3339))
	}
	ca, err := loadOrCreateCA(ctx, m.storage, now, caOptions{
		name: m.caName, lifetime: m.caLife, minLeft: m.issuer.lifetime, permitted: m.caDomains,
	}, m.log)
	if err != nil {
		return fmt.Errorf("local CA: %w", err)
	}
	m.issuer.ca.Store(ca)

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv := &serving{}
	srv.local, srv.localCache = m.newLocalConfig()
	if m.cfg.Mode == ModeACME {
		srv.acme, srv.acmeCache = m.newACMEConfig()
	}
	m.mu.Lock()
	m.cancel = cancel
	names := slices.Clone(m.names)
	m.mu.Unlock()
	m.serving.Store(srv)

	errs := m.manageLocal(ctx, ca, srv, names)
	if err := errs[m.primary]; err != nil {
		return fmt.Errorf("certificate for %s: %w", m.primary, err)
	}
	if srv.acme != nil {
		if err := srv.acme.ManageAsync(bg, m.cfg.ACME.Domains); err != nil {
			m.recordError(SourceACME, m.cfg.ACME.Domains[0], err)
		}
	}
	m.log.Info("TLS certificates ready", "mode", string(m.cfg.Mode), "names", names,
		"ca", ca.cert.Subject.CommonName, "ca_sha256", Fingerprint(ca.cert.Raw))
	return nil
}

func (m *Manager) newCache(get func() *certmagic.Config) *certmagic.Cache {
	c := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return get(), nil },
		RenewCheckInterval: m.renewEvery,
		Logger:             m.zl,
	})
	m.mu.Lock()
	m.caches = append(m.caches, c)
	m.mu.Unlock()
	return c
}

func shouldEmit(event string) bool { return event != "tls_get_certificate" }

func (m *Manager) newLocalConfig() (*certmagic.Config, *certmagic.Cache) {
	var cfg *certmagic.Config
	cache := m.newCache(func() *certmagic.Config { return cfg })
	cfg = certmagic.New(cache, certmagic.Config{
		Storage:            m.storage,
		Issuers:            []certmagic.Issuer{m.issuer},
		Logger:             m.zl,
		OnEvent:            m.onEvent(SourceLocal),
		ShouldEmitFunc:     shouldEmit,
		DefaultServerName:  m.primary,
		FallbackServerName: m.primary,
		OCSP:               certmagic.OCSPConfig{DisableStapling: true},
		DisableARI:         true,
	})
	return cfg, cache
}

func (m *Manager) newACMEConfig() (*certmagic.Config, *certmagic.Cache) {
	var cfg *certmagic.Config
	cache := m.newCache(func() *certmagic.Config { return cfg })
	cfg = certmagic.New(cache, certmagic.Config{
		Storage:        m.storage,
		Logger:         m.zl,
		OnEvent:        m.onEvent(SourceACME),
		ShouldEmitFunc: shouldEmit,
	})
	a := m.cfg.ACME
	dir := a.DirectoryURL
	if dir == "" {
		dir = LetsEncryptDirectory
	}
	iss := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      dir,
		Email:                   a.Email,
		Agreed:                  true,
		TrustedRoots:            a.RootCAs,
		ListenHost:              a.ListenHost,
		AltHTTPPort:             a.HTTPPort,
		AltTLSALPNPort:          a.TLSPort,
		DisableHTTPChallenge:    a.DisableHTTPChallenge,
		DisableTLSALPNChallenge: a.DisableTLSALPNChallenge,
		Logger:                  m.zl,
	})
	cfg.Issuers = []certmagic.Issuer{iss}
	m.acmeIssuer.Store(iss)
	return cfg, cache
}

// manageLocal loads or obtains local-CA certificates for names, one at a
// time so that one bad name does not stop the others. It returns the
// failures by name.
func (m *Manager) manageLocal(ctx context.Context, ca *authority, srv *serving, names []string) map[string]error {
	errs := map[string]error{}
	for _, name := range names {
		if err := checkPermitted(ca.cert, name); err != nil {
			m.recordError(SourceLocal, name, err)
			m.log.Error("no certificate for this name", "name", name, "err", err)
			errs[name] = err
			continue
		}
		m.dropForeignLeaf(ctx, ca, name)
		if err := srv.local.ManageSync(ctx, []string{name}); err != nil {
			m.recordError(SourceLocal, name, err)
			errs[name] = err
		}
	}
	return errs
}

// dropForeignLeaf deletes a stored local certificate for name that this CA
// did not sign (the CA was reset, or the data came from another Hearth), so
// that a new one is issued instead of serving one no device trusts.
func (m *Manager) dropForeignLeaf(ctx context.Context, ca *authority, name string) {
	chain, err := m.storage.Load(ctx, certmagic.StorageKeys.SiteCert(localIssuerKey, name))
	if err != nil || signedBy(chain, ca.cert) {
		return
	}
	m.log.Warn("stored certificate was not issued by this Hearth's CA; replacing it", "name", name)
	if err := m.storage.Delete(ctx, certmagic.StorageKeys.CertsSitePrefix(localIssuerKey, name)); err != nil {
		m.log.Warn("delete foreign certificate", "name", name, "err", err)
	}
}

// SetNames replaces the names served from the local CA (Config.Names), for
// example when the LAN addresses or the tailnet name change. The primary
// name is always kept. After Start, new names get their certificates before
// SetNames returns and dropped names stop being served and renewed (their
// files stay in storage); the error reports the names that failed.
func (m *Manager) SetNames(ctx context.Context, names []string) error {
	norm, err := normalizeNames(names)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if !slices.Contains(norm, m.primary) {
		norm = append([]string{m.primary}, norm...)
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("certs: SetNames after Close")
	}
	old := m.names
	m.names = norm
	for _, n := range old {
		if !slices.Contains(norm, n) {
			delete(m.errs, SourceLocal+" "+n)
		}
	}
	m.mu.Unlock()
	srv, ca := m.serving.Load(), m.issuer.ca.Load()
	if srv == nil || ca == nil {
		return nil // Start will use them
	}
	var removed []certmagic.SubjectIssuer
	for _, n := range old {
		if !slices.Contains(norm, n) {
			removed = append(removed, certmagic.SubjectIssuer{Subject: n, IssuerKey: localIssuerKey})
		}
	}
	if len(removed) > 0 {
		srv.localCache.RemoveManaged(removed)
	}
	var added []string
	for _, n := range norm {
		if !slices.Contains(old, n) {
			added = append(added, n)
		}
	}
	failed := m.manageLocal(ctx, ca, srv, added)
	var errs []error
	for _, name := range added {
		if err := failed[name]; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(added)+len(removed) > 0 {
		m.log.Info("TLS names changed", "names", norm)
	}
	if len(errs) > 0 {
		return fmt.Errorf("certs: %w", errors.Join(errs...))
	}
	return nil
}

// TLSConfig returns a new TLS configuration that serves the managed
// certificates (usable before Start; handshakes fail until it has run).
// Its NextProtos offer h2 and http/1.1 and, in ModeACME, the TLS-ALPN-01
// challenge protocol, which must stay in the list.
func (m *Manager) TLSConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if m.cfg.Mode == ModeACME && !m.cfg.ACME.DisableTLSALPNChallenge {
		protos = append(protos, acmeTLS1)
	}
	return &tls.Config{
		GetCertificate: m.getCertificate,
		NextProtos:     protos,
		MinVersion:     tls.VersionTLS12,
	}
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	srv := m.serving.Load()
	if srv == nil {
		return nil, fmt.Errorf("certs: %w", ErrNotStarted)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if srv.acme != nil {
		if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1 {
			return srv.acme.GetCertificate(hello)
		}
		if m.domains[name] {
			c, err := srv.acme.GetCertificate(hello)
			if err == nil {
				return c, nil
			}
			m.log.Debug("no ACME certificate yet; serving the local one", "name", name, "err", err)
		}
	}
	if m.cfg.Mode == ModeTailnet && strings.HasSuffix(name, ".ts.net") {
		c, err := m.cfg.TailnetGetCertificate(hello)
		if err == nil && c == nil {
			err = errors.New("no certificate")
		}
		m.noteTailnet(name, c, err)
		if err == nil {
			return c, nil
		}
	}
	return srv.local.GetCertificate(hello)
}

// HTTPChallengeHandler wraps the plain-HTTP handler so that it answers ACME
// HTTP-01 challenges (in ModeACME, once started) and passes every other
// request to next. Wrap the whole plain-HTTP server with it, before any
// redirect to HTTPS.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if iss := m.acmeIssuer.Load(); iss != nil && certmagic.LooksLikeHTTPChallenge(r) && iss.HandleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CACertPEM returns the local CA's certificate in PEM form, for devices to
// install (/ca.crt); nil before Start has loaded the CA.
func (m *Manager) CACertPEM() []byte {
	ca := m.issuer.ca.Load()
	if ca == nil {
		return nil
	}
	return slices.Clone(ca.certPEM)
}

// Close stops renewals and background work and releases storage locks. It
// is safe to call more than once, and without Start.
func (m *Manager) Close() error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cancel, caches := m.cancel, m.caches
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	for _, c := range caches {
		c.Stop()
	}
	if err := m.storage.Close(); err != nil {
		return fmt.Errorf("certs: close: %w", err)
	}
	return nil
}
