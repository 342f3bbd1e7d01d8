package proof_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/daemon"
)

// cheap keeps password hashing fast in in-process daemons.
var cheap = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

// appliance is a whole Hearth daemon run in the test process.
type appliance struct {
	d   *daemon.Daemon
	url string
	dir string
}

// startDaemon runs a daemon on 127.0.0.1:0 with extra flags.
func startDaemon(t testing.TB, flags map[string]string) *appliance {
	t.Helper()
	dir := t.TempDir()
	f := map[string]string{"data": dir, "tls": "off", "mdns": "false", "tailnet": "false", "listen": "127.0.0.1:0", "turn-listen": "127.0.0.1:0"}
	for k, v := range flags {
		f[k] = v
	}
	cfg, err := config.Load(config.Options{File: filepath.Join(dir, "none.toml"), Flags: f})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: l, Version: "proof", Hash: cheap, RelayIP: netip.MustParseAddr("127.0.0.1"), Logger: testLogger(t)})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	return &appliance{d: d, url: "http://" + l.Addr().String(), dir: dir}
}

// routes lists the patterns the daemon's web server answers.
func (a *appliance) routes(t testing.TB) []string {
	t.Helper()
	r, ok := a.d.Handler().(interface{ Routes() []string })
	if !ok {
		t.Fatal("the daemon's handler does not list its routes")
	}
	return r.Routes()
}

// lanAddr is where the in-process requests claim to come from: a device
// on the home network, not loopback.
const lanAddr = "192.168.1.50:40000"

// session is a browser's credentials: its cookie and CSRF token.
type session struct {
	cookie string
	csrf   string
	userID string
	bearer string // a guest ticket, sent as Authorization: Bearer
}

// result is what a request got: its status and error code.
type result struct {
	status int
	code   string
	header http.Header
	body   string
}

// call runs one request through the daemon's handler directly, as a LAN
// browser with sess (nil: none).
func (a *appliance) call(method, path string, sess *session, body string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://hearth.local"+path, rd)
	req.RemoteAddr = lanAddr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hearth-CSRF", "1")
	switch {
	case sess != nil && sess.bearer != "":
		req.Header.Set("Authorization", "Bearer "+sess.bearer)
	case sess != nil:
		req.AddCookie(&http.Cookie{Name: "hearth_session", Value: sess.cookie})
		req.Header.Set("X-Hearth-CSRF", sess.csrf)
	}
	w := httptest.NewRecorder()
	a.d.Handler().ServeHTTP(w, req)
	res := result{status: w.Code, header: w.Header(), body: w.Body.String()}
	var e struct {
		Error struct{ Code string }
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	res.code = e.Error.Code
	return res
}

// signIn signs a user in and returns the browser's session.
func (a *appliance) signIn(t testing.TB, name, password string) *session {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	req := httptest.NewRequest("POST", "http://hearth.local/api/v1/auth/login", strings.NewReader(string(body)))
	req.RemoteAddr = lanAddr
	req.Header.Set("X-Hearth-CSRF", "1")
	w := httptest.NewRecorder()
	a.d.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("sign in %s = %d %s", name, w.Code, w.Body)
	}
	var si signInReply
	json.Unmarshal(w.Body.Bytes(), &si)
	for _, c := range w.Result().Cookies() {
		if c.Name == "hearth_session" {
			return &session{cookie: c.Value, csrf: si.CSRF, userID: si.User.ID}
		}
	}
	t.Fatalf("sign in %s: no session cookie", name)
	return nil
}

// household is an appliance with an admin, a member and a member left
// out of a private channel, over the real listener.
type household struct {
	*appliance
	admin, member, outsider *apiClient
	adminID, memberID       string
	outsiderID              string
	private, privateVoice   channel
	public                  channel
}

const pw = "correct horse battery"

func newHousehold(t testing.TB, flags map[string]string) *household {
	t.Helper()
	a := startDaemon(t, flags)
	h := &household{appliance: a}
	var si signInReply
	h.admin, si = setupAdmin(t, a.url, a.dir, "mum", pw)
	h.adminID = si.User.ID
	h.member, si = h.admin.invite(t, "kid", pw)
	h.memberID = si.User.ID
	h.outsider, si = h.admin.invite(t, "lodger", pw)
	h.outsiderID = si.User.ID
	h.public = h.admin.createChannel(t, map[string]any{"name": "hall"})
	h.private = h.admin.createChannel(t, map[string]any{"name": "family", "kind": "private", "members": []string{h.adminID, h.memberID}})
	h.privateVoice = h.admin.createChannel(t, map[string]any{"name": "family-call", "kind": "private", "voice": true, "members": []string{h.adminID, h.memberID}})
	return h
}

func jsonInto(body string, v any) error { return json.Unmarshal([]byte(body), v) }

// testLogger shows the daemon's errors in the test log (HEARTH_PROOF_LOG=1:
// everything).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelError
	if os.Getenv("HEARTH_PROOF_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// guestTicket has the member offer a file to a guest over the realtime
// connection and pairs with the code, as a guest's browser does.
func (h *household) guestTicket(t *testing.T) string {
	t.Helper()
	c, status := dialRT(t, h.url, h.signIn(t, "kid", pw).cookie)
	if c == nil {
		t.Fatalf("realtime connection = %d", status)
	}
	c.send(t, "transfer.offer", fmt.Sprintf(`{"ts":%d,"nonce":"guest-offer-%d","guest":true,"files":[{"name":"a.txt","size":5,"type":"text/plain"}]}`,
		time.Now().UnixMilli(), time.Now().UnixNano()))
	for {
		typ, data := c.read(t)
		switch typ {
		case "error":
			t.Fatalf("guest offer refused: %s", data)
		case "transfer.created":
			var created struct {
				Code string `json:"code"`
			}
			json.Unmarshal(data, &created)
			r := h.call("POST", "/api/v1/transfer/pair", nil, `{"code":"`+created.Code+`"}`)
			var tk struct {
				Ticket string `json:"ticket"`
			}
			jsonInto(r.body, &tk)
			if r.status != 200 || tk.Ticket == "" {
				t.Fatalf("pair with code %q = %d %s", created.Code, r.status, r.body)
			}
			return tk.Ticket
		}
	}
}
