//go:build !hearth_notailnet

package tailnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tsnet"
)

// Built reports whether this binary links the tailnet (it was built without
// the hearth_notailnet tag).
const Built = true

// watchRetry is how long the status watcher waits before it watches again
// after the watch broke.
const watchRetry = time.Second

// Node is Hearth's node on the tailnet. Its methods are safe for concurrent
// use.
type Node struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	srv       *tsnet.Server // set by Start
	lc        *local.Client // set by Start
	status    Status
	changed   chan struct{} // closed and replaced when status changes
	wasUp     bool          // the node has been running since Start
	gaveUp    bool          // the login was refused and tsnet stopped
	loginAsk  bool          // a new interactive login was asked for
	started   bool
	closed    bool
	lastWarn  string // last LastError logged, so a repeat is logged once
	lastState State  // last state logged

	// life ends when Close is called; background work (the status
	// watcher, certificate fetches) runs under it and is counted in wg.
	life     context.Context
	stopLife context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once // closes srv once

	certs certCache

	hookMu    sync.Mutex // serializes OnStateChange calls
	hookState State      // the state OnStateChange last saw
}

// New checks cfg and returns a Node. Nothing starts until Start.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkFeatures(); err != nil {
		return nil, err
	}
	if err := checkLogUpload(cfg.LogUpload); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, changed: make(chan struct{})}
	n.life, n.stopLife = context.WithCancel(context.Background())
	n.status = Status{State: StateStopped, Hostname: cfg.Hostname, LogUpload: cfg.LogUpload, Since: time.Now()}
	n.hookState = StateStopped
	n.certs.fetch = n.fetchCertificate
	return n, nil
}

// Start brings the node up on the tailnet and waits until it is running,
// ctx ends, or it is clear that it cannot come up without someone's help:
//
//   - nil: the node is up; DNSName and the addresses are known.
//   - ErrNeedsLogin: no auth key was given for a new node, or the node's
//     key expired. The node keeps waiting; Status.AuthURL is the login page.
//   - ErrNeedsApproval: the tailnet admin must approve the device; the
//     node keeps waiting and comes up once approved.
//   - ErrAuth: the coordination server refused the auth key (invalid,
//     expired, used up). The node is stopped; Status.LastError says why.
//   - ctx's error: not up yet (e.g. no internet). The node keeps trying in
//     the background; Status tells how it goes.
//
// Other errors (an unreadable auth key file, a state directory that cannot
// be created) mean the node did not start. In every case Status shows the
// outcome and Close must still be called. Listen and ListenPacket work from
// the moment Start returns, whatever it returned but ErrAuth: connections
// arrive once the node is up. Start may be called once.
func (n *Node) Start(ctx context.Context) error {
	err := n.start()
	n.notifyState()
	if err != nil {
		return err
	}
	return n.wait(ctx)
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case n.started:
		return errors.New("tailnet: node already started")
	}
	n.started = true
	key, source, err := n.cfg.authKey()
	n.status.AuthKeySource = source
	if err != nil {
		n.setStateLocked(StateFailed, err.Error())
		return err
	}
	if fi, err := os.Stat(n.cfg.AuthKeyFile); source == "file" && err == nil && fi.Mode().Perm()&0o077 != 0 {
		n.log.Warn("the tailnet auth key file is readable by other users; chmod 600 it", "file", n.cfg.AuthKeyFile, "mode", fi.Mode().Perm())
	}
	if !n.cfg.LogUpload {
		if err := disableLogUpload(n.cfg.Dir); err != nil {
			n.setStateLocked(StateFailed, err.Error())
			return err
		}
	}
	srv := &tsnet.Server{
		Dir:        n.cfg.Dir,
		Hostname:   n.cfg.Hostname,
		AuthKey:    key,
		ControlURL: n.cfg.ControlURL,
		Ephemeral:  n.cfg.Ephemeral,
		Port:       n.cfg.Port,
		UserLogf:   n.tsnetLogf(slog.LevelDebug, "tsnet"),
		Logf:       n.tsnetLogf(slog.LevelDebug, "tsnet backend"),
	}
	n.setStateLocked(StateStarting, "")
	n.log.Info("joining the tailnet", "hostname", n.cfg.Hostname, "dir", n.cfg.Dir, "auth_key", orNone(source),
		"control", orDefault(n.cfg.ControlURL), "log_upload", n.cfg.LogUpload)
	if err := srv.Start(); err != nil {
		// tsnet closes what it opened when Start fails; srv.Close would
		// trip over the parts it never made.
		err = fmt.Errorf("start tailnet node: %w", err)
		n.setStateLocked(StateFailed, err.Error())
		return err
	}
	lc, err := srv.LocalClient()
	if err != nil {
		srv.Close()
		err = fmt.Errorf("start tailnet node: %w", err)
		n.setStateLocked(StateFailed, err.Error())
		return err
	}
	n.srv, n.lc = srv, lc
	n.wg.Add(1)
	go n.watch()
	return nil
}

// wait waits for Start's outcome; see Start.
func (n *Node) wait(ctx context.Context) error {
	for {
		n.mu.Lock()
		st, changed, closed := n.status, n.changed, n.closed
		n.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case st.State == StateRunning:
			return nil
		case st.State == StateNeedsLogin && st.AuthURL != "":
			return fmt.Errorf("%w at %s", ErrNeedsLogin, st.AuthURL)
		case st.State == StateNeedsApproval:
			return ErrNeedsApproval
		case st.State == StateFailed:
			return fmt.Errorf("%w: %s", ErrAuth, st.LastError)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for the tailnet: %w (still trying)", ctx.Err())
		}
	}
}

// Close leaves the tailnet (an ephemeral node is then removed by the
// tailnet soon) and closes every listener. It is idempotent and safe to
// call at any time, also concurrently with Start.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	srv := n.srv
	n.mu.Unlock()
	n.stopLife()
	if srv != nil {
		n.stopServer()
	}
	n.wg.Wait()
	n.mu.Lock()
	st := &n.status
	st.DNSName, st.Tailnet, st.Addrs, st.CertDomains, st.MagicDNS = "", "", nil, nil, false
	st.AuthURL, st.KeyExpiry, st.Health = "", time.Time{}, nil
	n.setStateLocked(StateStopped, "")
	n.srv, n.lc = nil, nil
	n.mu.Unlock()
	if srv != nil {
		n.log.Info("left the tailnet")
	}
	n.notifyState()
	return nil
}

// goBackground runs fn in a goroutine that Close waits for, after
// calling before (synchronously), unless the node is closed.
func (n *Node) goBackground(fn, before func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	if before != nil {
		before()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
	return true
}

// stopServer closes tsnet once (after a refused login, or at Close).
func (n *Node) stopServer() {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		srv := n.srv
		n.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
}

// server returns tsnet and its local client, or why they cannot be used.
func (n *Node) server() (*tsnet.Server, *local.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return nil, nil, ErrClosed
	case n.srv == nil:
		return nil, nil, ErrNotStarted
	case n.status.State == StateFailed:
		return nil, nil, fmt.Errorf("%w: %s", ErrNotRunning, n.status.LastError)
	}
	return n.srv, n.lc, nil
}

// Status returns a snapshot of the node's state. It is cheap: it reads what
// the node last learned and asks tsnet nothing.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.snapshotLocked()
}

func (n *Node) snapshotLocked() Status {
	s := n.status
	s.Addrs = slices.Clone(s.Addrs)
	s.CertDomains = slices.Clone(s.CertDomains)
	s.Health = slices.Clone(s.Health)
	return s
}

// DNSName returns the node's MagicDNS name, e.g. "hearth.tail1234.ts.net",
// or "" while the node is not up.
func (n *Node) DNSName() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status.DNSName
}

// Addrs returns the node's tailnet addresses (IPv4 first), or nil while the
// node is not up.
func (n *Node) Addrs() []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.status.Addrs)
}

// Listen listens for TCP connections from the tailnet, e.g. Listen("tcp",
// ":443") for HTTPS and the realtime hub. network is "tcp", "tcp4" or
// "tcp6"; addr is ":port" (every tailnet address of the node) or
// "ip:port". The listener yields plain TCP connections whose RemoteAddr is
// the peer's tailnet address (for WhoIs); wrap it in TLS as for the LAN.
// It works as soon as Start returned: connections arrive once the node is
// up. Close closes it too.
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("tailnet listen %s %s: network must be tcp, tcp4 or tcp6", network, addr)
	}
	srv, _, err := n.server()
	if err != nil {
		return nil, fmt.Errorf("tailnet listen %s %s: %w", network, addr, err)
	}
	ln, err := srv.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet listen %s %s: %w", network, addr, err)
	}
	return ln, nil
}

// ListenPacket listens for UDP from the tailnet, e.g. for TURN and voice.
// network is "udp", "udp4" or "udp6". tsnet needs the local address
// spelled out, so a bare ":port" (or "udp" with no host) is bound to the
// node's IPv4 tailnet address ("udp6": its IPv6 one), which needs the node
// up (else ErrNotRunning). The conn's LocalAddr is that address, so it can
// be offered as an ICE candidate. Close closes it too.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	srv, _, err := n.server()
	if err != nil {
		return nil, fmt.Errorf("tailnet listen %s %s: %w", network, addr, err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet listen %s %s: %w", network, addr, err)
	}
	if host == "" {
		var ip netip.Addr
		for _, a := range n.Addrs() {
			if a.Is4() && network != "udp6" || a.Is6() && network == "udp6" {
				ip = a
				break
			}
		}
		switch network {
		case "udp", "udp4", "udp6":
		default:
			return nil, fmt.Errorf("tailnet listen %s %s: network must be udp, udp4 or udp6", network, addr)
		}
		if !ip.IsValid() {
			return nil, fmt.Errorf("tailnet listen %s %s: %w (its address is not known yet)", network, addr, ErrNotRunning)
		}
		addr = net.JoinHostPort(ip.String(), port)
	}
	pc, err := srv.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet listen %s %s: %w", network, addr, err)
	}
	return pc, nil
}

// Dial connects to addr over the tailnet (e.g. to check reachability from
// `hearth doctor`, or in tests). It waits for the node to be up.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	srv, _, err := n.server()
	if err != nil {
		return nil, fmt.Errorf("tailnet dial %s %s: %w", network, addr, err)
	}
	c, err := srv.Dial(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet dial %s %s: %w", network, addr, err)
	}
	return c, nil
}

// watch follows tsnet's state until Close and keeps Status current.
func (n *Node) watch() {
	defer n.wg.Done()
	ctx := n.life
	for ctx.Err() == nil {
		if stop := n.watchOnce(ctx); stop {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
}

// watchOnce watches the IPN bus until it breaks; stop means the node
// failed and was stopped.
func (n *Node) watchOnce(ctx context.Context) (stop bool) {
	w, err := n.lc.WatchIPNBus(ctx, ipn.NotifyInitialState|ipn.NotifyInitialHealthState|ipn.NotifyNoNetMap)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("watch the tailnet state", "err", err)
		}
		return false
	}
	defer w.Close()
	for {
		note, err := w.Next()
		if err != nil {
			if ctx.Err() == nil {
				n.log.Debug("watch the tailnet state", "err", err)
			}
			return false
		}
		if note.ErrMessage != nil && n.refused(*note.ErrMessage) {
			return true
		}
		if note.State == nil && note.BrowseToURL == nil && note.LoginFinished == nil &&
			note.SelfChange == nil && note.Health == nil && note.ErrMessage == nil {
			continue
		}
		st, err := n.lc.StatusWithoutPeers(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Debug("read the tailnet status", "err", err)
			}
			continue
		}
		n.update(st)
	}
}

// refused handles a critical error from the backend: before the node was
// ever up it is a refused login (a bad auth key), and the node stops
// instead of retrying the same key for ever. It reports whether it stopped.
func (n *Node) refused(msg string) bool {
	n.mu.Lock()
	if n.wasUp {
		n.status.LastError = msg
		n.broadcastLocked()
		n.mu.Unlock()
		n.warnOnce(msg)
		return false
	}
	if strings.Contains(msg, "requires logging") {
		// tsnet's words name tailscaled's flag; say Hearth's.
		msg = "the tailnet requires network flow logs, and log upload is off (tailnet_log_upload)"
	}
	n.gaveUp = true
	n.setStateLocked(StateFailed, msg)
	n.mu.Unlock()
	n.log.Error("the tailnet refused the node; check the auth key", "err", msg)
	n.notifyState()
	// Not from this goroutine: it holds a watch open.
	n.goBackground(n.stopServer, nil)
	return true
}

// update folds tsnet's status into ours.
func (n *Node) update(st *ipnstate.Status) {
	n.mu.Lock()
	if n.closed || n.gaveUp {
		n.mu.Unlock()
		return
	}
	s := &n.status
	state := mapState(st.BackendState)
	s.AuthURL = st.AuthURL
	if state != StateNeedsLogin {
		s.AuthURL = ""
	}
	if state == StateNeedsLogin && s.AuthURL == "" && !n.wasUp {
		// tsnet passes through NeedsLogin while it logs in with an
		// auth key; a login is needed only once the server gives a URL.
		state = StateStarting
	}
	s.Addrs = slices.Clone(st.TailscaleIPs)
	slices.SortFunc(s.Addrs, func(a, b netip.Addr) int { return a.Compare(b) }) // IPv4 first
	s.CertDomains = slices.Clone(st.CertDomains)
	s.Health = slices.Clone(st.Health)
	s.DNSName, s.KeyExpiry = "", time.Time{}
	if st.Self != nil {
		s.DNSName = strings.TrimSuffix(st.Self.DNSName, ".")
		if st.Self.KeyExpiry != nil {
			s.KeyExpiry = *st.Self.KeyExpiry
		}
	}
	s.Tailnet, s.MagicDNS = "", false
	if t := st.CurrentTailnet; t != nil {
		s.Tailnet, s.MagicDNS = t.Name, t.MagicDNSEnabled
	}
	if state != StateRunning {
		s.Addrs, s.DNSName = nil, ""
	}
	lastErr := s.LastError
	if state == StateRunning || state == StateStarting && s.State == StateFailed {
		n.wasUp = true
		lastErr = ""
	}
	if state == StateFailed && lastErr == "" {
		lastErr = "the tailnet node stopped"
		if len(st.Health) > 0 {
			lastErr = strings.Join(st.Health, "; ")
		}
	}
	prefetch := state == StateRunning && n.lastState != StateRunning && n.cfg.FetchCertificate && len(s.CertDomains) > 0
	// After the node was up, its key expired (or it was logged out):
	// tsnet asks for a login URL only at start, so ask for one here.
	askLogin := state == StateNeedsLogin && n.wasUp && s.AuthURL == "" && !n.loginAsk
	if state == StateRunning {
		n.loginAsk = false
	}
	if askLogin {
		n.loginAsk = true
		if lastErr == "" {
			lastErr = "the node's key expired or it was logged out; it must be logged in again"
		}
	}
	n.setStateLocked(state, lastErr)
	n.broadcastLocked()
	snap := n.snapshotLocked()
	n.mu.Unlock()
	n.logState(snap)
	n.notifyState()
	if prefetch {
		n.certs.prefetch(n, snap.DNSName)
	}
	if askLogin {
		lc := n.lc
		n.goBackground(func() {
			if err := lc.StartLoginInteractive(n.life); err != nil && n.life.Err() == nil {
				n.log.Warn("ask the tailnet for a login URL", "err", err)
			}
		}, nil)
	}
}

// mapState maps tsnet's backend state to a Node's.
func mapState(s string) State {
	switch s {
	case ipn.Running.String():
		return StateRunning
	case ipn.NeedsLogin.String():
		return StateNeedsLogin
	case ipn.NeedsMachineAuth.String():
		return StateNeedsApproval
	case ipn.Stopped.String():
		// Hearth never asks tsnet to stop; it stops by itself only when
		// the tailnet will not have it (e.g. flow logs required).
		return StateFailed
	}
	return StateStarting
}

// setStateLocked changes the state and the last error. n.mu is held.
func (n *Node) setStateLocked(state State, lastErr string) {
	if state != n.status.State {
		n.status.State = state
		n.status.Since = time.Now()
	}
	n.status.LastError = lastErr
	n.broadcastLocked()
}

func (n *Node) broadcastLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// notifyState calls OnStateChange when the state changed since its last
// call.
func (n *Node) notifyState() {
	if n.cfg.OnStateChange == nil {
		return
	}
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	n.mu.Lock()
	st := n.snapshotLocked()
	n.mu.Unlock()
	if st.State == n.hookState {
		return
	}
	n.hookState = st.State
	n.cfg.OnStateChange(st)
}

// logState logs a state change once.
func (n *Node) logState(s Status) {
	n.mu.Lock()
	changed := s.State != n.lastState
	n.lastState = s.State
	n.mu.Unlock()
	if !changed {
		return
	}
	switch s.State {
	case StateRunning:
		n.log.Info("up on the tailnet", "name", s.DNSName, "addrs", s.Addrs, "tailnet", s.Tailnet, "https", len(s.CertDomains) > 0)
	case StateNeedsLogin:
		if s.AuthURL != "" {
			n.log.Warn("the tailnet node needs a login: open the URL and log in as a member of the tailnet", "url", s.AuthURL)
		}
	case StateNeedsApproval:
		n.log.Warn("the tailnet node waits for the tailnet admin to approve it in the admin console")
	case StateFailed:
		n.log.Error("the tailnet node stopped", "err", s.LastError)
	}
}

// warnOnce logs a problem once until it changes.
func (n *Node) warnOnce(msg string) {
	n.mu.Lock()
	repeat := msg == n.lastWarn
	n.lastWarn = msg
	n.mu.Unlock()
	if !repeat {
		n.log.Warn("tailnet problem", "err", msg)
	}
}

// tsnetLogf bridges tsnet's printf-style logs to slog at level. When the
// handler would drop them it returns a no-op, so nothing is formatted.
func (n *Node) tsnetLogf(level slog.Level, src string) func(format string, args ...any) {
	if !n.log.Enabled(context.Background(), level) {
		return func(string, ...any) {}
	}
	log := n.log.With("src", src)
	return func(format string, args ...any) {
		log.Log(context.Background(), level, strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
