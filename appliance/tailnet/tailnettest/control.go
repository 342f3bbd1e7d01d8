//go:build !hearth_notailnet

package tailnettest

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/net/netns"
	"tailscale.com/net/stun/stuntest"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
	"tailscale.com/types/nettype"
)

// DefaultDomain is the tailnet's MagicDNS domain when
// ControlConfig.Domain is empty: nodes are <hostname>.tail1234.ts.net.
const DefaultDomain = "tail1234.ts.net"

// LoginDomain is the domain of the users the coordination server makes up:
// each node is logged in as its own user, user-N@LoginDomain.
const LoginDomain = "fake-control.example.net"

// ControlConfig configures the coordination server.
type ControlConfig struct {
	// AuthKey, when set, is the only auth key the server accepts;
	// others are refused ("invalid authkey"). Empty: any key, or none.
	AuthKey string
	// Domain is the MagicDNS domain; empty means DefaultDomain.
	Domain string
	// RequireLogin makes nodes without a valid auth key log in
	// interactively: they get an AuthURL; Control.CompleteLogin
	// completes it.
	RequireLogin bool
	// RequireApproval makes new nodes wait for the admin's approval
	// (device approval).
	RequireApproval bool
}

// Control is a running coordination server with its DERP relay and STUN
// server, all on 127.0.0.1.
type Control struct {
	// URL is the coordination server's base URL, for Config.ControlURL.
	URL string
	// Server is Tailscale's test coordination server, for what the
	// helpers do not cover.
	Server *testcontrol.Server
	cfg    ControlConfig
}

// StartControl starts a coordination server, DERP relay and STUN server on
// loopback for the rest of the test. It must run inside Isolate's
// namespace. It turns off tsnet's use of socket marks (as tsnet's own tests
// do) until the test ends.
func StartControl(t testing.TB, cfg ControlConfig) *Control {
	t.Helper()
	if err := loopbackOnly(); err != nil {
		t.Fatalf("tailnettest.StartControl: %v", err)
	}
	if os.Getenv("TS_DISABLE_PORTMAPPER") == "" {
		t.Fatal("tailnettest.StartControl: TS_DISABLE_PORTMAPPER is not set: run the test through tailnettest.Isolate")
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })

	derpMap := startDERP(t)
	srv := &testcontrol.Server{
		DERPMap:            derpMap,
		DNSConfig:          &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain:     cfg.Domain,
		RequireAuthKey:     cfg.AuthKey,
		RequireAuth:        cfg.RequireLogin,
		RequireMachineAuth: cfg.RequireApproval,
		AllOnline:          true,
		Logf:               logf(),
	}
	srv.HTTPTestServer = httptest.NewUnstartedServer(srv)
	srv.HTTPTestServer.Config.ErrorLog = log.New(logWriter{}, "", 0)
	srv.HTTPTestServer.Start()
	t.Cleanup(srv.HTTPTestServer.Close)
	return &Control{URL: srv.HTTPTestServer.URL, Server: srv, cfg: cfg}
}

// startDERP starts a DERP relay and a STUN server on 127.0.0.1 for the rest
// of the test and returns the map that points at them (as Tailscale's
// integration.RunDERPAndSTUN does, without that package's dependencies).
func startDERP(t testing.TB) *tailcfg.DERPMap {
	t.Helper()
	d := derpserver.New(key.NewNode(), logf())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(derpserver.Handler(d))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(logWriter{}, "", 0)
	srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	srv.StartTLS()
	stunAddr, stopSTUN := stuntest.ServeWithPacketListener(t, nettype.Std{})
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		d.Close()
		stopSTUN()
	})
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
		1: {RegionID: 1, RegionCode: "test", Nodes: []*tailcfg.DERPNode{{
			Name: "t1", RegionID: 1, HostName: "127.0.0.1", IPv4: "127.0.0.1", IPv6: "none",
			STUNPort: stunAddr.Port, DERPPort: ln.Addr().(*net.TCPAddr).Port,
			InsecureForTests: true, STUNTestIP: "127.0.0.1",
		}}},
	}}
}

// CompleteLogin logs in the node waiting at authURL (RequireLogin, or
// after ExpireKey). Like Tailscale's coordination server, it gives a node
// that logs in again a key that has not expired.
func (c *Control) CompleteLogin(authURL string) bool {
	for _, n := range c.Server.AllNodes() {
		if !n.KeyExpiry.IsZero() && n.KeyExpiry.Before(time.Now()) {
			n = n.Clone()
			n.KeyExpiry = time.Time{}
			c.Server.UpdateNode(n)
		}
	}
	return c.Server.CompleteAuth(authURL)
}

// node returns the node registered under hostname.
func (c *Control) node(hostname string) *tailcfg.Node {
	for _, n := range c.Server.AllNodes() {
		if n.Hostinfo.Valid() && n.Hostinfo.Hostname() == hostname {
			return n
		}
	}
	return nil
}

// Approve approves the node registered under hostname, as the tailnet
// admin does in the admin console (RequireApproval). It reports whether
// such a node exists.
func (c *Control) Approve(hostname string) bool {
	n := c.node(hostname)
	return n != nil && c.Server.CompleteDeviceApproval(c.URL, c.URL+"/admin", &n.Key)
}

// ExpireKey expires the key of the node registered under hostname, as
// happens when a tailnet's key expiry passes: the node must be logged in
// again. It reports whether such a node exists.
func (c *Control) ExpireKey(hostname string) bool {
	n := c.node(hostname)
	if n == nil {
		return false
	}
	n = n.Clone()
	n.KeyExpiry = time.Now().Add(-time.Minute)
	c.Server.UpdateNode(n)
	return true
}

// Hostinfo returns what the node registered under hostname told the
// server about itself.
func (c *Control) Hostinfo(hostname string) (tailcfg.HostinfoView, bool) {
	n := c.node(hostname)
	if n == nil {
		return tailcfg.HostinfoView{}, false
	}
	return n.Hostinfo, true
}

// Client is a device on the tailnet: a tsnet node of its own, logged in as
// its own user.
type Client struct {
	// Srv is the client's tsnet node.
	Srv *tsnet.Server
	// Addr is its IPv4 tailnet address.
	Addr netip.Addr
	// DNSName is its MagicDNS name, e.g. "alices-phone.tail1234.ts.net".
	DNSName string
	// LoginName is its user's login, e.g. "user-2@fake-control.example.net".
	LoginName string
	// UserID is its user's ID.
	UserID int64
}

// NewClient brings up a client node named hostname (with the server's
// auth key, if one is required) and waits until it is up and connected to
// the DERP relay. It is closed when the test ends.
func (c *Control) NewClient(t testing.TB, hostname string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), hostname)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &tsnet.Server{
		Dir:        dir,
		Hostname:   hostname,
		ControlURL: c.URL,
		AuthKey:    c.cfg.AuthKey,
		Store:      new(mem.Store),
		Ephemeral:  true,
		UserLogf:   logf(),
		Logf:       logf(),
	}
	t.Cleanup(func() { s.Close() })
	st, err := s.Up(ctx)
	if err != nil {
		t.Fatalf("bring up tailnet client %s: %v", hostname, err)
	}
	cl := &Client{Srv: s, DNSName: trimDot(st.Self.DNSName)}
	for _, a := range st.TailscaleIPs {
		if a.Is4() {
			cl.Addr = a
		}
	}
	if u, ok := st.User[st.Self.UserID]; ok {
		cl.LoginName, cl.UserID = u.LoginName, int64(u.ID)
	}
	if err := WaitDERP(ctx, s); err != nil {
		t.Fatalf("tailnet client %s: %v", hostname, err)
	}
	return cl
}

// HTTPClient returns an HTTP client that dials over the tailnet; MagicDNS
// names ("hearth", "hearth.tail1234.ts.net") resolve.
func (cl *Client) HTTPClient() *http.Client { return cl.Srv.HTTPClient() }

// Dial connects to addr over the tailnet.
func (cl *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return cl.Srv.Dial(ctx, network, addr)
}

// Ping pings ip over the tailnet (a disco ping, through DERP or
// directly) until it answers or ctx ends. Use it to know that a peer is
// reachable before timing anything.
func (cl *Client) Ping(ctx context.Context, ip netip.Addr) error {
	lc, err := cl.Srv.LocalClient()
	if err != nil {
		return err
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := lc.Ping(pctx, ip, tailcfg.PingDisco)
		cancel()
		if err == nil && res.Err == "" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s", res.Err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ping %s over the tailnet: %w (last: %v)", ip, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitDERP waits until s has chosen its home DERP region and heard from it:
// until then the relay drops packets for s, and the first connection to it
// would wait for a retransmission.
func WaitDERP(ctx context.Context, s *tsnet.Server) error {
	h := s.Sys().HealthTracker.Get()
	ms := s.Sys().MagicSock.Get()
	for {
		if r := ms.GetLastNetcheckReport(ctx); r != nil && r.PreferredDERP != 0 &&
			!h.GetDERPRegionReceivedTime(r.PreferredDERP).IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the DERP relay: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// logf is where the servers and clients log: nowhere, or stderr with
// EnvVerbose=1 (a test's t.Logf would outlive the test in tsnet's
// goroutines).
func logf() logger.Logf {
	if os.Getenv(EnvVerbose) == "1" {
		return log.Printf
	}
	return logger.Discard
}

// logWriter discards unless EnvVerbose=1.
type logWriter struct{}

func (logWriter) Write(p []byte) (int, error) {
	if os.Getenv(EnvVerbose) == "1" {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}
