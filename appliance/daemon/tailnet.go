package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/tailnet"
	"github.com/hearth-home/hearth/appliance/web"
)

// TailnetDir is the tailnet node's state directory inside the data
// directory (node key, tailnet certificates). `hearth backup` does not
// include it: a restored box joins the tailnet again as a new device.
const TailnetDir = "tailnet"

// tailnetStartTimeout bounds the wait for the node at start. The node keeps
// trying in the background after it; Hearth serves the LAN all along.
const tailnetStartTimeout = 2 * time.Minute

// keyTailnetLogins is the meta record mapping tailnet logins to accounts.
const keyTailnetLogins = "tailnet_logins"

// maxRecentPeers bounds the tailnet logins remembered for the admin panel.
const maxRecentPeers = 20

// viaTailnet marks the context of a request that came in over the tailnet
// listener.
type viaTailnet struct{}

// tailnetParts is Hearth's node on the tailnet and what goes with it.
type tailnetParts struct {
	node  *tailnet.Node
	names chan struct{} // kicked when the certificate names must follow the node

	mu     sync.Mutex
	recent []recentPeer // newest first
}

// recentPeer is a tailnet login seen on a request, for the admin panel.
type recentPeer struct {
	Login       string    `json:"login"`
	DisplayName string    `json:"display_name,omitempty"`
	Node        string    `json:"node"`
	Seen        time.Time `json:"seen"`
}

// newTailnet builds the tailnet node when the config asks for it.
func (d *Daemon) newTailnet() error {
	if !d.cfg.Tailnet {
		if d.cfg.TLS == config.TLSTailnet {
			return errors.New("tls mode tailnet needs the tailnet: set tailnet = true (--tailnet), or use --tls local")
		}
		return nil
	}
	tp := &tailnetParts{names: make(chan struct{}, 1)}
	host := d.cfg.TailnetHostname
	if host == "" {
		host = d.cfg.Name
	}
	node, err := tailnet.New(tailnet.Config{
		Hostname:         host,
		Dir:              filepath.Join(d.cfg.Data, TailnetDir),
		AuthKey:          d.cfg.TailnetAuthKey,
		AuthKeyFile:      d.cfg.TailnetAuthKeyFile,
		ControlURL:       d.cfg.TailnetControlURL,
		LogUpload:        d.cfg.TailnetLogUpload,
		FetchCertificate: d.cfg.TLS == config.TLSTailnet,
		OnStateChange: func(tailnet.Status) {
			select {
			case tp.names <- struct{}{}:
			default:
			}
		},
		Logger: d.log.With("component", "tailnet"),
	})
	if err != nil {
		return fmt.Errorf("tailnet: %w", err)
	}
	tp.node = node
	d.tailnet = tp
	return nil
}

// startTailnet joins the tailnet in the background and then serves the
// same handler there: HTTPS on :443 (TLS from tlsConfig, nil with TLS off)
// and on :80 the plain-HTTP handler (or, with TLS off, everything). A bad
// auth key or no network never fails Hearth's start: the node's state
// shows in /readyz, the admin UI and `hearth doctor`.
func (d *Daemon) startTailnet(ctx context.Context, tlsConfig *tls.Config, plain http.Handler) {
	tp := d.tailnet
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.followTailnetNames(ctx)
	}()
	go func() {
		defer d.wg.Done()
		sctx, cancel := context.WithTimeout(ctx, tailnetStartTimeout)
		err := tp.node.Start(sctx)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, tailnet.ErrClosed):
			return
		case errors.Is(err, tailnet.ErrNeedsLogin), errors.Is(err, tailnet.ErrNeedsApproval),
			errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			// The node keeps trying; listeners work once it is up.
			d.log.Warn("not on the tailnet yet; serving the LAN meanwhile", "err", err)
		default:
			d.log.Error("tailnet node did not start; serving the LAN only", "err", err)
			return
		}
		if tlsConfig != nil {
			ln, err := tp.node.Listen("tcp", ":443")
			if err != nil {
				d.log.Error("listen on the tailnet", "err", err)
				return
			}
			d.serveHTTP(ln, markTailnet(d.web), tlsConfig)
		}
		ln, err := tp.node.Listen("tcp", ":80")
		if err != nil {
			d.log.Error("listen on the tailnet", "err", err)
			return
		}
		d.serveHTTP(ln, markTailnet(plain), nil)
		d.log.Info("serving on the tailnet", "name", tp.node.DNSName(), "https", tlsConfig != nil)
	}()
}

// markTailnet marks requests as having come in over the tailnet.
func markTailnet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viaTailnet{}, true)))
	})
}

func fromTailnet(r *http.Request) bool {
	v, _ := r.Context().Value(viaTailnet{}).(bool)
	return v
}

// followTailnetNames keeps the local CA's certificate covering the node's
// MagicDNS name and tailnet addresses as they change.
func (d *Daemon) followTailnetNames(ctx context.Context) {
	var last []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.tailnet.names:
		}
		if d.certs == nil {
			continue
		}
		extra := tailnetNames(d.tailnet.node.Status())
		if slices.Equal(extra, last) {
			continue
		}
		last = extra
		if err := d.certs.SetNames(ctx, append(d.certNames(), extra...)); err != nil && ctx.Err() == nil {
			d.log.Warn("certificate for the tailnet name", "err", err)
		}
	}
}

// tailnetNames are the names the local certificate adds for the node: its
// MagicDNS name and tailnet addresses, once it is up.
func tailnetNames(st tailnet.Status) []string {
	if st.State != tailnet.StateRunning {
		return nil
	}
	var out []string
	if st.DNSName != "" {
		out = append(out, st.DNSName)
	}
	for _, a := range st.Addrs {
		out = append(out, a.String())
	}
	return out
}

// identifyTailnet is web's Identify hook: WhoIs of the peer behind r, which
// came in over the tailnet listener.
func (d *Daemon) identifyTailnet(r *http.Request) (web.TailnetPeer, error) {
	id, err := d.tailnet.node.IdentifyRequest(r)
	if err != nil {
		return web.TailnetPeer{}, err
	}
	p := web.TailnetPeer{LoginName: id.LoginName, DisplayName: id.DisplayName, NodeName: id.NodeName, Person: id.IsPerson()}
	if p.Person {
		d.tailnet.seen(recentPeer{Login: id.LoginName, DisplayName: id.DisplayName, Node: id.NodeName, Seen: time.Now().UTC()})
	}
	return p, nil
}

// seen remembers a login for the admin panel, newest first.
func (tp *tailnetParts) seen(p recentPeer) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.recent = slices.DeleteFunc(tp.recent, func(o recentPeer) bool { return strings.EqualFold(o.Login, p.Login) })
	tp.recent = slices.Insert(tp.recent, 0, p)
	if len(tp.recent) > maxRecentPeers {
		tp.recent = tp.recent[:maxRecentPeers]
	}
}

// tailnetAdminStatus is the node's state for the admin panel (the login
// URL included: admins only).
type tailnetAdminStatus struct {
	tailnet.Status
	RecentLogins []recentPeer `json:"recent_logins"`
}

func (d *Daemon) tailnetStatus() any {
	tp := d.tailnet
	tp.mu.Lock()
	recent := slices.Clone(tp.recent)
	tp.mu.Unlock()
	if recent == nil {
		recent = []recentPeer{}
	}
	return tailnetAdminStatus{Status: tp.node.Status(), RecentLogins: recent}
}

// tailnetLogins keeps the admin's mapping of tailnet logins to accounts in
// the store's meta bucket (so `hearth backup` has it).
type tailnetLogins struct{ st *store.Store }

func (t tailnetLogins) load(tx *store.Tx) (map[string]string, error) {
	m, _, err := store.Get[map[string]string](tx, store.BucketMeta, keyTailnetLogins)
	if m == nil {
		m = map[string]string{}
	}
	return m, err
}

// TailnetLogins implements web.TailnetLogins.
func (t tailnetLogins) TailnetLogins() ([]web.TailnetLogin, error) {
	var out []web.TailnetLogin
	err := t.st.View(func(tx *store.Tx) error {
		m, err := t.load(tx)
		for login, id := range m {
			out = append(out, web.TailnetLogin{Login: login, UserID: id})
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read tailnet logins: %w", err)
	}
	slices.SortFunc(out, func(a, b web.TailnetLogin) int { return strings.Compare(a.Login, b.Login) })
	return out, nil
}

// SetTailnetLogin implements web.TailnetLogins.
func (t tailnetLogins) SetTailnetLogin(login, userID string) error {
	return t.update(login, func(m map[string]string) { m[login] = userID })
}

// DeleteTailnetLogin implements web.TailnetLogins.
func (t tailnetLogins) DeleteTailnetLogin(login string) error {
	return t.update(login, func(map[string]string) {})
}

// update drops every mapping of login (logins compare without case) and
// then applies change.
func (t tailnetLogins) update(login string, change func(map[string]string)) error {
	err := t.st.Update(func(tx *store.Tx) error {
		m, err := t.load(tx)
		if err != nil {
			return err
		}
		for l := range m {
			if strings.EqualFold(l, login) {
				delete(m, l)
			}
		}
		change(m)
		return store.Put(tx, store.BucketMeta, keyTailnetLogins, m)
	})
	if err != nil {
		return fmt.Errorf("save tailnet login %s: %w", login, err)
	}
	return nil
}

// tailnetComponent is the node's state for /readyz (public: no login URL).
func (d *Daemon) tailnetComponent() map[string]any {
	if d.tailnet == nil {
		return map[string]any{"state": "off"}
	}
	st := d.tailnet.node.Status()
	c := map[string]any{"state": st.State}
	if st.DNSName != "" {
		c["name"] = st.DNSName
	}
	if len(st.Addrs) > 0 {
		c["addrs"] = st.Addrs
	}
	if st.LastError != "" {
		c["error"] = st.LastError
	}
	return c
}

// tailnetCheck reports the node for `hearth doctor`.
func (d *Daemon) tailnetCheck() admin.Check {
	c := admin.Check{Name: "tailnet"}
	if d.tailnet == nil {
		c.Status, c.Detail = admin.CheckOK, "off"
		if tailnet.Built {
			c.Detail += " (set tailnet = true and an auth key to reach Hearth from anywhere)"
		}
		return c
	}
	st := d.tailnet.node.Status()
	logs := "log upload off"
	if st.LogUpload {
		logs = "log upload ON"
	}
	switch st.State {
	case tailnet.StateRunning:
		c.Status = admin.CheckOK
		c.Detail = fmt.Sprintf("running as %s (%s), %s", st.DNSName, joinAddrs(st.Addrs), logs)
		if !st.MagicDNS {
			c.Status, c.Fix = admin.CheckWarn, "turn MagicDNS on in the tailnet's admin console (DNS page) so members can open "+st.DNSName
		}
		if d.cfg.TLS == config.TLSTailnet && len(st.CertDomains) == 0 {
			c.Status, c.Fix = admin.CheckWarn, "turn HTTPS certificates on in the tailnet's admin console (DNS page); meanwhile the local CA serves "+st.DNSName
		}
	case tailnet.StateStarting:
		c.Status, c.Detail = admin.CheckWarn, "starting (connecting to the coordination server)"
		c.Fix = "check the box's internet connection; it keeps trying"
	case tailnet.StateNeedsLogin:
		c.Status, c.Detail = admin.CheckWarn, "needs a login"
		c.Fix = "set tailnet_auth_key_file to an auth key from the tailnet's admin console and restart hearth"
		if st.AuthURL != "" {
			c.Fix = "open " + st.AuthURL + " and log in as a member of the tailnet, or " + c.Fix
		}
	case tailnet.StateNeedsApproval:
		c.Status, c.Detail = admin.CheckWarn, "waiting for the tailnet admin's approval"
		c.Fix = "approve the device " + st.Hostname + " in the tailnet's admin console"
	default:
		c.Status, c.Detail = admin.CheckFail, string(st.State)
		c.Fix = "make a new auth key in the tailnet's admin console, put it in tailnet_auth_key_file and restart hearth"
	}
	if st.LastError != "" {
		c.Detail += ": " + st.LastError
	}
	if len(st.Health) > 0 {
		c.Detail += "; health: " + strings.Join(st.Health, "; ")
	}
	return c
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// addresses lists every address Hearth can be reached at, for the Connect
// page and `hearth doctor`.
func (d *Daemon) addresses() []web.Address {
	scheme, trust, std := "https", "local_ca", 443
	switch d.cfg.TLS {
	case config.TLSOff:
		scheme, trust, std = "http", "none", 80
	case config.TLSACME:
		trust = "local_ca"
	}
	port := portOf(d.cfg.Listen, std)
	if a, ok := d.Addr().(*net.TCPAddr); ok && a != nil {
		port = a.Port
	}
	httpPort := portOf(d.cfg.HTTPListen, 80)
	hostURL := func(s, host string, port, std int) string {
		if port == std {
			return s + "://" + hostPort(host, "")
		}
		return s + "://" + hostPort(host, strconv.Itoa(port))
	}
	add := func(out []web.Address, kind, host, note string, port, httpPort int, trust string) []web.Address {
		a := web.Address{URL: hostURL(scheme, host, port, std), Kind: kind, Trust: trust, Note: note}
		if trust == "local_ca" {
			a.TrustURL = hostURL("http", host, httpPort, 80) + "/"
		}
		return append(out, a)
	}
	var out []web.Address
	if d.cfg.TLS == config.TLSACME && d.cfg.ACMEDomain != "" {
		out = append(out, web.Address{URL: hostURL(scheme, d.cfg.ACMEDomain, port, std), Kind: "public", Trust: "public", Note: "anywhere its DNS name resolves"})
	}
	if d.mdns != nil {
		host := d.mdns.Status().Host
		if host == "" {
			host = d.cfg.Name + ".local"
		}
		out = add(out, "mdns", host, "on the home network", port, httpPort, trust)
	}
	for _, ip := range lanAddrs(d.cfg.Listen) {
		out = add(out, "lan", ip.String(), "on the home network", port, httpPort, trust)
	}
	if d.tailnet != nil {
		st := d.tailnet.node.Status()
		tsTrust := trust
		if d.cfg.TLS == config.TLSTailnet && slices.Contains(st.CertDomains, st.DNSName) {
			tsTrust = "public"
		}
		if st.DNSName != "" {
			out = add(out, "tailnet", st.DNSName, "anywhere, on devices in the tailnet", std, 80, tsTrust)
		}
		for _, a := range st.Addrs {
			out = add(out, "tailnet_ip", a.String(), "anywhere, on devices in the tailnet", std, 80, trust)
		}
	}
	return out
}

func hostPort(host, port string) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" {
		return host
	}
	return host + ":" + port
}

// addressesCheck lists the addresses for `hearth doctor`.
func (d *Daemon) addressesCheck() admin.Check {
	var urls []string
	for _, a := range d.addresses() {
		urls = append(urls, a.URL)
	}
	c := admin.Check{Name: "addresses", Status: admin.CheckOK, Detail: strings.Join(urls, " ")}
	if len(urls) == 0 {
		c.Status, c.Detail = admin.CheckWarn, "none found"
		c.Fix = "connect the box to the LAN, or turn on mdns or the tailnet"
	}
	return c
}

// webTailnet is the web layer's link to the node; zero without a tailnet.
func (d *Daemon) webTailnet() web.TailnetConfig {
	if d.tailnet == nil {
		return web.TailnetConfig{}
	}
	return web.TailnetConfig{FromTailnet: fromTailnet, Identify: d.identifyTailnet,
		Logins: tailnetLogins{st: d.store}, Status: d.tailnetStatus}
}

// components is the body of /readyz: each part's state, no secrets.
func (d *Daemon) components() map[string]any {
	out := map[string]any{"tailnet": d.tailnetComponent()}
	if d.certs == nil {
		out["certs"] = map[string]any{"state": "off"}
	} else {
		st := d.certs.Status()
		c := map[string]any{"state": "ready", "mode": st.Mode}
		if !st.Ready {
			c["state"] = "waiting"
		}
		if st.Error != "" {
			c["state"], c["error"] = "error", st.Error
		}
		out["certs"] = c
	}
	if d.mdns == nil {
		out["mdns"] = map[string]any{"state": "off"}
	} else {
		st := d.mdns.Status()
		c := map[string]any{"state": st.State, "host": st.Host}
		if st.LastError != "" {
			c["error"] = st.LastError
		}
		out["mdns"] = c
	}
	return out
}

// lanAddrs are the machine's LAN addresses a device can open: those of
// its interfaces (not loopback or link-local), or only the listen address
// when Hearth listens on one.
func lanAddrs(listen string) []netip.Addr {
	usable := func(ip netip.Addr) bool { return !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() }
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			if usable(ip) {
				return []netip.Addr{ip.Unmap()}
			}
			return nil
		}
	}
	var out []netip.Addr
	ifAddrs, _ := net.InterfaceAddrs()
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && usable(p.Addr()) {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}
