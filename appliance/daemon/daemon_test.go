package daemon_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/daemon"
	"github.com/hearth-home/hearth/appliance/store"
)

var cheap = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

func testConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.Options{File: filepath.Join(dir, "none.toml"),
		Flags: map[string]string{"data": dir, "tls": "off", "mdns": "false", "listen": "127.0.0.1:0", "turn-listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a daemon on 127.0.0.1:0 in dir and stops it when the test ends.
func start(t *testing.T, dir string) (*daemon.Daemon, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{Config: testConfig(t, dir), Listener: l, Version: "test", Hash: cheap,
		RelayIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	return d, "http://" + l.Addr().String()
}

// client is a browser-like API client with its own cookies.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}, csrf: "1"}
}

func (c *client) do(method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hearth-CSRF", c.csrf)
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

type signIn struct {
	User auth.User `json:"user"`
	CSRF string    `json:"csrf"`
}

func (c *client) signedIn(status int, s signIn, want int) {
	c.t.Helper()
	if status != want || s.CSRF == "" {
		c.t.Fatalf("sign-in status %d (csrf %q), want %d", status, s.CSRF, want)
	}
	c.csrf = s.CSRF
}

// settle waits for the goroutine count to come back to base.
func settle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines leaked:\n%s", n-base, buf)
	}
}

func TestEndToEnd(t *testing.T) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	d, url := start(t, dir)

	// First run: setup with the one-time token.
	admin1 := newClient(t, url)
	var st struct {
		SetupRequired bool `json:"setup_required"`
	}
	admin1.do("GET", "/api/v1/status", nil, &st)
	if !st.SetupRequired {
		t.Fatal("status does not ask for setup on a new appliance")
	}
	ops, closeOps, err := admin.Connect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := ops.SetupToken(context.Background())
	closeOps()
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if s := admin1.do("POST", "/api/v1/setup", map[string]string{"token": "wrong", "name": "mum", "password": "correct horse"}, &e); s != 403 || e.Error.Code != "bad_setup_token" {
		t.Fatalf("setup with a wrong token = %d %+v", s, e)
	}
	var si signIn
	admin1.signedIn(admin1.do("POST", "/api/v1/setup", map[string]string{"token": token, "name": "mum", "display_name": "Mum", "password": "correct horse"}, &si), si, 201)
	if si.User.Role != "admin" {
		t.Fatalf("setup user role = %q", si.User.Role)
	}

	// Invite a second member, who joins in another "browser".
	var inv struct {
		Token string `json:"token"`
		URL   string `json:"url"`
	}
	if s := admin1.do("POST", "/api/v1/admin/invites", map[string]any{"uses": 1, "ttl_seconds": 3600}, &inv); s != 201 || !strings.HasSuffix(inv.URL, "/join/"+inv.Token) {
		t.Fatalf("create invite = %d %+v", s, inv)
	}
	kid := newClient(t, url)
	if s := kid.do("GET", "/api/v1/invites/"+inv.Token, nil, nil); s != 200 {
		t.Fatalf("check invite = %d", s)
	}
	kid.signedIn(kid.do("POST", "/api/v1/invites/"+inv.Token+"/accept", map[string]string{"name": "kid", "password": "long enough"}, &si), si, 201)
	if s := newClient(t, url).do("POST", "/api/v1/invites/"+inv.Token+"/accept", map[string]string{"name": "kid2", "password": "long enough"}, &e); s != 410 || e.Error.Code != "invite_used_up" {
		t.Fatalf("reusing the invite = %d %+v", s, e)
	}
	var users struct{ Users []auth.User }
	admin1.do("GET", "/api/v1/admin/users", nil, &users)
	if len(users.Users) != 2 {
		t.Fatalf("admin sees %d users, want 2", len(users.Users))
	}
	if s := kid.do("GET", "/api/v1/admin/users", nil, nil); s != 403 {
		t.Fatalf("member listing users = %d, want 403", s)
	}

	// The kid signs in on a second device, sees both, and revokes the first.
	phone := newClient(t, url)
	phone.signedIn(phone.do("POST", "/api/v1/auth/login", map[string]string{"name": "kid", "password": "long enough"}, &si), si, 200)
	var sessions struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		}
	}
	phone.do("GET", "/api/v1/sessions", nil, &sessions)
	if len(sessions.Sessions) != 2 {
		t.Fatalf("kid has %d sessions, want 2", len(sessions.Sessions))
	}
	var other string
	for _, s := range sessions.Sessions {
		if !s.Current {
			other = s.ID
		}
	}
	// The first device holds a realtime connection; revoking it closes it.
	ws := dialWS(t, kid, url)
	if s := phone.do("DELETE", "/api/v1/sessions/"+other, nil, nil); s != 204 {
		t.Fatalf("revoke session = %d", s)
	}
	if code := readUntilClose(t, ws); code == websocket.StatusGoingAway {
		t.Fatalf("revoked session's socket closed with %v", code)
	}
	if s := kid.do("GET", "/api/v1/me", nil, nil); s != 401 {
		t.Fatalf("revoked session still answers: %d", s)
	}

	// Shutdown closes realtime connections with going-away.
	ws2 := dialWS(t, phone, url)
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop(context.Background()) }()
	if code := readUntilClose(t, ws2); code != websocket.StatusGoingAway {
		t.Fatalf("socket closed with %v on shutdown, want going away", code)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(d.SocketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("admin socket left behind: %v", err)
	}
	for _, c := range []*client{admin1, kid, phone} {
		c.http.CloseIdleConnections()
	}
	settle(t, base)
}

func dialWS(t *testing.T, c *client, base string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/v1/ws",
		&websocket.DialOptions{HTTPClient: c.http, HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		t.Fatalf("dial realtime: %v", err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"type":"hello"`) {
		t.Fatalf("first realtime message = %s, %v", msg, err)
	}
	return ws
}

func readUntilClose(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			code := websocket.CloseStatus(err)
			if code == -1 {
				t.Fatalf("realtime connection ended without a close frame: %v", err)
			}
			return code
		}
	}
}

func TestCrossOriginWebSocketRefused(t *testing.T) {
	dir := t.TempDir()
	_, url := start(t, dir)
	c := newClient(t, url)
	ops, closeOps, _ := admin.Connect(dir, nil)
	tok, _ := ops.SetupToken(context.Background())
	closeOps()
	var si signIn
	c.signedIn(c.do("POST", "/api/v1/setup", map[string]string{"token": tok, "name": "mum", "password": "correct horse"}, &si), si, 201)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/api/v1/ws",
		&websocket.DialOptions{HTTPClient: c.http, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin WebSocket = %v (resp %v), want 403", err, resp)
	}
}

func TestSecondDaemonOnSameDataRefused(t *testing.T) {
	dir := t.TempDir()
	start(t, dir)
	_, err := daemon.New(daemon.Options{Config: testConfig(t, dir), Hash: cheap})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second daemon on the same data = %v, want ErrLocked", err)
	}
}

func TestBadDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, store.FileName), bytes.Repeat([]byte("junk"), 2048), 0o600)
	_, err := daemon.New(daemon.Options{Config: testConfig(t, dir), Hash: cheap})
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("daemon on a corrupt file = %v, want ErrCorrupt", err)
	}
}

func TestLocalTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.TLS = config.TLSLocal
	main, _ := net.Listen("tcp", "127.0.0.1:0")
	plain, _ := net.Listen("tcp", "127.0.0.1:0")
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: main, HTTPListener: plain, Hash: cheap})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	plainURL := "http://" + plain.Addr().String()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}

	// The plain port: the trust page, the CA, and redirects for the rest.
	resp, err := noRedirect.Get(plainURL + "/ca.crt")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /ca.crt = %v %v", resp, err)
	}
	caPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("/ca.crt is not a PEM certificate: %q", caPEM)
	}
	resp, _ = noRedirect.Get(plainURL + "/app/chat?x=1")
	port := main.Addr().(*net.TCPAddr).Port
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != fmt.Sprintf("https://127.0.0.1:%d/app/chat?x=1", port) {
		t.Fatalf("plain request = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp.Body.Close()
	resp, _ = noRedirect.Get(plainURL + "/")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("/ca.mobileconfig")) {
		t.Fatalf("trust page = %d", resp.StatusCode)
	}

	// A client trusting only the downloaded CA reaches https://hearth.local.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "hearth.local"}}
	tc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err = tc.Get("https://" + main.Addr().String() + "/api/v1/status")
	if err != nil {
		t.Fatalf("HTTPS with the local CA: %v", err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS over HTTPS")
	}
	tr2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "bank.example"}}
	defer tr2.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr2, Timeout: 5 * time.Second}).Get("https://" + main.Addr().String() + "/healthz"); err == nil {
		t.Fatal("the local certificate verified for a name it must not cover")
	}
}

func TestTailnetTLSWithoutTailnetRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.TLS = config.TLSTailnet
	if _, err := daemon.New(daemon.Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "tailnet") {
		t.Fatalf("daemon with tls=tailnet = %v, want a clear refusal", err)
	}
}

func TestAdminOpsThroughSocketAndDirect(t *testing.T) {
	dir := t.TempDir()
	d, _ := start(t, dir)
	ctx := context.Background()
	ops, closeOps, err := admin.Connect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := ops.Status(ctx); !st.Running {
		t.Fatal("admin.Connect did not reach the running daemon")
	}
	if _, err := ops.AddUser(ctx, auth.NewUser{Name: "mum", Password: "correct horse", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.AddUser(ctx, auth.NewUser{Name: "mum", Password: "correct horse"}); !errors.Is(err, auth.ErrNameTaken) {
		t.Fatalf("duplicate user through the socket = %v, want ErrNameTaken", err)
	}
	var buf bytes.Buffer
	if n, err := ops.Backup(ctx, &buf); err != nil || n == 0 {
		t.Fatalf("backup through the socket = %d, %v", n, err)
	}
	closeOps()
	d.Stop(ctx)

	// With the daemon down, the same operations open the file directly.
	ops, closeOps, err = admin.Connect(dir, func(st *store.Store) (*admin.Service, error) {
		a, err := auth.New(auth.Config{Store: st, Hash: cheap})
		return &admin.Service{Auth: a, Store: st}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOps()
	if st, _ := ops.Status(ctx); st.Running {
		t.Fatal("direct admin claims the daemon runs")
	}
	users, err := ops.Users(ctx)
	if err != nil || len(users) != 1 || users[0].Name != "mum" {
		t.Fatalf("direct Users() = %v, %v", users, err)
	}
}
