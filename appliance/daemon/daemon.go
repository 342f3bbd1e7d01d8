package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/discovery"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/metrics"
	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/systemd"
	"github.com/hearth-home/hearth/appliance/transfer"
	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/web"
	"github.com/hearth-home/hearth/webui"
)

// StopTimeout bounds a graceful shutdown.
const StopTimeout = 10 * time.Second

// Options configures a Daemon.
type Options struct {
	Config  *config.Config // required
	Logger  *slog.Logger   // nil: discard
	Version string
	// Listener, when set, is used for the main (HTTPS or plain) address
	// instead of binding Config.Listen; tests hand in 127.0.0.1:0.
	Listener net.Listener
	// HTTPListener likewise replaces Config.HTTPListen (used with TLS on).
	HTTPListener net.Listener
	// RelayIP is the address TURN relay sockets bind to; zero means the
	// LAN address (tests use 127.0.0.1).
	RelayIP netip.Addr
	// Hash overrides the password hash costs (tests); zero is the default.
	Hash auth.HashParams
}

// Daemon is a running (or ready to run) Hearth.
type Daemon struct {
	opts     Options
	cfg      *config.Config
	log      *slog.Logger
	notify   *systemd.Notifier
	store    *store.Store
	auth     *auth.Service
	chat     *chat.Service
	hub      *hub.Hub
	web      *web.Server
	certs    *certs.Manager
	mdns     *discovery.Announcer
	tailnet  *tailnetParts // nil unless --tailnet
	voice    *voice.Service
	transfer *transfer.Service
	relay    *relayParts
	relayErr error // why the relay is off
	metrics  *metrics.Registry

	mu       sync.Mutex
	started  bool
	stopped  bool
	cancel   context.CancelFunc
	servers  []*http.Server
	wg       sync.WaitGroup
	mainAddr net.Addr
	errc     chan error

	voiceAddr net.Addr // the voice UDP socket's address
}

// New opens the store and builds the parts. Nothing listens yet.
func New(opts Options) (*Daemon, error) {
	if opts.Config == nil {
		return nil, errors.New("daemon: no config")
	}
	d := &Daemon{opts: opts, cfg: opts.Config, log: opts.Logger, metrics: metrics.NewRegistry(), errc: make(chan error, 4)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.notify = systemd.NewNotifier(d.log.With("component", "systemd"))
	st, err := store.Open(filepath.Join(d.cfg.Data, store.FileName), store.Options{})
	if err != nil {
		return nil, err
	}
	d.store = st
	if err := d.build(); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) build() error {
	var err error
	if err := d.newTailnet(); err != nil {
		return err
	}
	if d.certs, err = d.newCerts(); err != nil {
		return err
	}
	d.auth, err = auth.New(auth.Config{Store: d.store, SessionIdle: d.cfg.SessionIdle, SessionMax: d.cfg.SessionMax,
		Hash: d.opts.Hash, Logger: d.log.With("component", "auth"), UsersChanged: d.usersChanged})
	if err != nil {
		return err
	}
	// Chat publishes through the hub, which starts from chat's newest
	// event; events committed before the hub exists wait in the store.
	d.chat, err = chat.New(chat.Config{Store: d.store, Users: d.auth, Dir: filepath.Join(d.cfg.Data, "attachments"),
		Logger: d.log.With("component", "chat"), Publish: func(ev hub.Event) {
			if d.hub != nil {
				d.hub.Publish(ev)
			}
		}})
	if err != nil {
		return err
	}
	if err := d.chat.EnsureDefault(); err != nil {
		return fmt.Errorf("create #general: %w", err)
	}
	var srv *web.Server
	d.hub = hub.New(hub.Config{Logger: d.log.With("component", "hub"), Version: d.opts.Version,
		LastID: d.chat.LastEventID, Visible: d.chat.CanRead, Replay: d.chat.Replay,
		Handle: func(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error {
			return srv.HandleRealtime(ctx, c, typ, data)
		},
		ErrorCode: func(err error) string {
			if c := transfer.Code(err); c != "" {
				return c
			}
			if c := voice.Code(err); c != "error" {
				return c
			}
			return ""
		},
		Disconnected: func(c hub.Client) {
			if d.voice != nil {
				d.voice.Disconnected(c)
			}
		}})
	if d.transfer, err = d.newTransfer(); err != nil {
		return err
	}
	srv, err = web.New(web.Config{Auth: d.auth, Hub: d.hub, Chat: d.chat, UI: webui.Files(), Metrics: d.metrics,
		Logger: d.log.With("component", "web"), Name: d.cfg.Name, Version: d.opts.Version,
		TLS: d.cfg.TLS != config.TLSOff, Ready: d.store.Ping, CACert: d.caCert, MobileConfig: d.mobileConfig,
		TURNCredentials: d.turnCredentials, RelayStats: d.relayStats,
		Transfer: d.transfer, GuestTURNCredentials: d.guestTURNCredentials,
		Voice: func(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error {
			if d.voice == nil {
				return errors.New("voice is not running")
			}
			return d.voice.Handle(ctx, c, typ, data)
		},
		Tailnet: d.webTailnet(), Addresses: d.addresses, Components: d.components})
	if err != nil {
		return err
	}
	d.web = srv
	if d.cfg.MDNS {
		port := portOf(d.cfg.Listen, 443)
		d.mdns, err = discovery.New(discovery.Config{Name: d.cfg.Name, Version: d.opts.Version, Port: port,
			Logger: d.log.With("component", "mdns")})
		if err != nil {
			return fmt.Errorf("mdns: %w", err)
		}
	}
	d.registerMetrics()
	return nil
}

// checks reports the running parts for `hearth doctor`.
func (d *Daemon) checks(context.Context) []admin.Check {
	out := []admin.Check{{Name: "serving", Status: admin.CheckOK,
		Detail: fmt.Sprintf("%s (%d realtime connections)", d.Addr(), d.hub.Online())}, d.relayCheck(), d.tailnetCheck(), d.addressesCheck()}
	if d.certs == nil {
		out = append(out, admin.Check{Name: "tls", Status: admin.CheckWarn, Detail: "off: plain HTTP",
			Fix: "fine behind a reverse proxy; otherwise set tls = \"local\" so browsers allow the microphone and notifications"})
	} else {
		st := d.certs.Status()
		c := admin.Check{Name: "tls", Status: admin.CheckOK, Detail: string(st.Mode)}
		if st.CA != nil {
			c.Detail += ", CA " + st.CA.SHA256[:23] + "…"
		}
		for _, cs := range st.Certificates {
			if cs.Error != "" {
				c.Status, c.Fix = admin.CheckWarn, "see the log (journalctl -u hearth) for "+cs.Name
				c.Detail += "; " + cs.Name + ": " + cs.Error
			}
		}
		if !st.Ready {
			c.Status = admin.CheckWarn
			if c.Fix == "" {
				c.Fix = "certificates are still being obtained; check again in a minute"
			}
		}
		if st.Error != "" {
			c.Status, c.Detail = admin.CheckFail, st.Error
		}
		out = append(out, c)
	}
	if d.mdns == nil {
		out = append(out, admin.Check{Name: "mdns", Status: admin.CheckWarn, Detail: "off", Fix: "set mdns = true to be found as " + d.cfg.Name + ".local"})
	} else {
		st := d.mdns.Status()
		c := admin.Check{Name: "mdns", Status: admin.CheckOK, Detail: fmt.Sprintf("%s as %s on %v", st.State, st.Host, st.Interfaces)}
		if st.LastError != "" {
			c.Status, c.Detail = admin.CheckWarn, st.LastError
			c.Fix = "connect the box to the LAN with an interface that allows multicast"
		}
		if st.Conflicts > 0 {
			c.Status = admin.CheckWarn
			c.Fix = "another device uses the name " + d.cfg.Name + ".local; set a different name"
		}
		out = append(out, c)
	}
	return out
}

func (d *Daemon) caCert() []byte {
	if d.certs == nil || d.cfg.TLS == config.TLSACME {
		return nil
	}
	return d.certs.CACertPEM()
}

func (d *Daemon) mobileConfig() ([]byte, error) {
	return certs.MobileConfig(d.caCert(), d.cfg.Name)
}

// usersChanged refreshes what chat knows of accounts after one changes.
func (d *Daemon) usersChanged() {
	if d.chat == nil {
		return
	}
	if err := d.chat.RefreshUsers(); err != nil {
		d.log.Error("refresh accounts for chat", "err", err)
	}
}

func (d *Daemon) registerMetrics() {
	m := d.metrics
	m.NewGaugeFunc("hearth_realtime_connections", "Open realtime WebSocket connections.", func() float64 { return float64(d.hub.Online()) })
	m.NewGaugeFunc("hearth_store_bytes", "Size of the database file.", func() float64 { return float64(d.store.Size()) })
	m.NewGaugeFunc("hearth_goroutines", "Goroutines.", func() float64 { return float64(runtime.NumGoroutine()) })
	m.NewGaugeFunc("hearth_heap_bytes", "Bytes of allocated heap objects.", func() float64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc)
	})
	m.NewGaugeFunc("hearth_users", "Accounts.", func() float64 {
		us, _ := d.auth.Users()
		return float64(len(us))
	})
}

// Handler is the main HTTP handler (for tests that drive it directly).
func (d *Daemon) Handler() http.Handler { return d.web }

// Addr is the main listener's address once started.
func (d *Daemon) Addr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mainAddr
}

// SocketPath is the admin socket's path.
func (d *Daemon) SocketPath() string { return filepath.Join(d.cfg.Data, admin.SocketName) }

// Start binds the listeners and serves. On failure everything it started is
// stopped again. It reports READY=1 to systemd when every listener serves.
func (d *Daemon) Start(ctx context.Context) (err error) {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("daemon: already started")
	}
	d.started = true
	d.mu.Unlock()

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	defer func() {
		if err != nil {
			d.Stop(context.Background())
		}
	}()

	activated, err := systemd.Listeners()
	if err != nil {
		return err
	}
	main := d.opts.Listener
	if main == nil {
		main = activated["https"]
	}
	if main == nil {
		if main, err = net.Listen("tcp", d.cfg.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", d.cfg.Listen, err)
		}
	}
	d.mu.Lock()
	d.mainAddr = main.Addr()
	d.mu.Unlock()
	var tlsConfig *tls.Config
	if d.certs != nil {
		plain := d.opts.HTTPListener
		if plain == nil {
			plain = activated["http"]
		}
		if plain == nil {
			if plain, err = net.Listen("tcp", d.cfg.HTTPListen); err != nil {
				main.Close()
				return fmt.Errorf("listen on %s (plain HTTP): %w", d.cfg.HTTPListen, err)
			}
		}
		// Certificates are obtained once the ports are bound, so ACME
		// challenges reach these listeners.
		if err := d.certs.Start(ctx); err != nil {
			main.Close()
			plain.Close()
			return fmt.Errorf("certificates: %w", err)
		}
		tlsConfig = d.certs.TLSConfig()
		d.serveHTTP(plain, d.certs.HTTPChallengeHandler(d.web.PlainHandler(main.Addr().(*net.TCPAddr).Port)), nil)
	}
	if d.tailnet != nil {
		tsPlain := http.Handler(d.web) // tls = off: everything on port 80
		if tlsConfig != nil {
			tsPlain = d.web.PlainHandler(443)
		}
		d.startTailnet(runCtx, tlsConfig, tsPlain)
	}
	web, iceTCP := splitICE(main)
	d.serveHTTP(web, d.web, tlsConfig)

	if err := d.startVoice(iceTCP); err != nil {
		return err
	}
	if err := d.startRelay(); err != nil {
		return err
	}
	d.registerRelayMetrics()

	adminL, err := admin.Listen(d.SocketPath())
	if err != nil {
		return err
	}
	svc := d.adminService(true)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := admin.Serve(runCtx, adminL, admin.Handler(svc, d.log.With("component", "admin"))); err != nil {
			d.errc <- err
		}
	}()

	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.sweep(runCtx) }()
	d.runTransfer(runCtx)
	if d.mdns != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.mdns.Run(runCtx); err != nil {
				d.log.Warn("mdns stopped", "err", err)
			}
		}()
	}

	url := d.cfg.BaseURL()
	if _, port, _ := net.SplitHostPort(d.cfg.Listen); port == "0" || d.opts.Listener != nil || activated["https"] != nil {
		scheme := "https"
		if tlsConfig == nil {
			scheme = "http"
		}
		url = fmt.Sprintf("%s://%s", scheme, main.Addr())
	}
	d.log.Info("hearth is serving", "url", url, "listen", main.Addr().String(), "data", d.cfg.Data, "version", d.opts.Version)
	status := "serving on " + main.Addr().String()
	if need, _ := d.auth.SetupRequired(); need {
		tok, err := d.auth.SetupToken()
		if err != nil {
			return fmt.Errorf("make setup token: %w", err)
		}
		d.log.Info("first run: open "+url+"/setup and enter the setup token (also shown by `hearth admin setup-token`)", "setup_token", tok)
		status += "; waiting for setup"
	}
	d.notify.Ready(status)
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.notify.RunWatchdog(runCtx, d.store.Ping) }()
	return nil
}

// adminService is the admin operations on this daemon's parts.
func (d *Daemon) adminService(running bool) *admin.Service {
	return &admin.Service{Auth: d.auth, Store: d.store, Version: d.opts.Version, Data: d.cfg.Data,
		BaseURL: d.cfg.BaseURL(), Running: running, Disconnect: d.disconnectUser, Checks: d.checks}
}

func (d *Daemon) serveHTTP(l net.Listener, h http.Handler, tlsConfig *tls.Config) {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.log.With("component", "http").Handler(), slog.LevelDebug),
	}
	d.mu.Lock()
	if d.stopped { // a late tailnet listener
		d.mu.Unlock()
		l.Close()
		return
	}
	d.servers = append(d.servers, srv)
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		serve := func() error { return srv.Serve(l) }
		if tlsConfig != nil {
			serve = func() error { return srv.ServeTLS(l, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.errc <- fmt.Errorf("serve %s: %w", l.Addr(), err)
		}
	}()
}

// sweep removes ended sessions and old invites every hour.
func (d *Daemon) sweep(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := d.auth.Sweep(); err != nil {
			d.log.Warn("sweep ended sessions", "err", err)
		} else if n > 0 {
			d.log.Debug("swept ended sessions and invites", "count", n)
		}
		if n, err := d.chat.Sweep(); err != nil {
			d.log.Warn("sweep chat", "err", err)
		} else if n > 0 {
			d.log.Debug("swept old events and unposted uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stop shuts down in reverse order: tell systemd, close realtime
// connections with a going-away frame, stop accepting and finish requests,
// stop background work, close the store. It is safe to call more than once.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return nil
	}
	d.stopped = true
	servers := d.servers
	d.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, StopTimeout)
	defer cancel()
	d.notify.Stopping()
	var errs []error
	if d.voice != nil {
		d.voice.Close() // says bye to every call while the hub still carries it
	}
	if err := d.hub.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down HTTP: %w", err))
		}
	}
	if d.tailnet != nil {
		d.tailnet.node.Close() // leave the tailnet once its listeners are done
	}
	if d.mdns != nil {
		d.mdns.Close() // goodbyes while the network is still up
	}
	if d.cancel != nil {
		d.cancel()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, errors.New("background work did not stop in time"))
	}
	if d.relay != nil {
		d.relay.server.Close()
	}
	if d.certs != nil {
		d.certs.Close()
	}
	if err := d.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	d.log.Info("hearth stopped")
	return errors.Join(errs...)
}

// Run starts the daemon, serves until ctx ends or a part fails, then stops.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-d.errc:
		d.log.Error("a part failed; stopping", "err", runErr)
	}
	return errors.Join(runErr, d.Stop(context.Background()))
}

// Close releases the store of a daemon that was built but never started.
func (d *Daemon) Close() error {
	d.mu.Lock()
	started := d.started
	d.mu.Unlock()
	if started {
		return d.Stop(context.Background())
	}
	if d.tailnet != nil {
		d.tailnet.node.Close()
	}
	return d.store.Close()
}
