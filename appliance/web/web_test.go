package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store/storetest"
	"github.com/hearth-home/hearth/appliance/web"
)

var ui = fstest.MapFS{
	"index.html": {Data: []byte(`<script type="module" src="/app.js" nonce="{{NONCE}}"></script>`)},
	"app.js":     {Data: []byte(`console.log("hi")`)},
}

type fixture struct {
	srv     *httptest.Server
	auth    *auth.Service
	session string // admin's session cookie
	csrf    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := storetest.Open(t)
	a, err := auth.New(auth.Config{Store: st, Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := chat.New(chat.Config{Store: st, Users: a, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Visible: c.CanRead})
	s, err := web.New(web.Config{Auth: a, Hub: h, Chat: c, UI: ui, Name: "hearth", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { h.Close(context.Background()); srv.Close() })
	f := &fixture{srv: srv, auth: a}
	tok, _ := a.SetupToken()
	resp := f.req(t, "POST", "/api/v1/setup", `{"token":"`+tok+`","name":"mum","password":"correct horse"}`, map[string]string{"X-Hearth-CSRF": "1"})
	if resp.StatusCode != 201 {
		t.Fatalf("setup = %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == web.CookieName {
			f.session = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Fatalf("session cookie flags: %+v", c)
			}
		}
	}
	var body struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&body)
	f.csrf = body.CSRF
	return f
}

func (f *fixture) req(t *testing.T, method, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (f *fixture) cookie() string { return web.CookieName + "=" + f.session }

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("error body is not JSON: %v", err)
	}
	if e.Error.Message == "" {
		t.Fatalf("error %q has no message", e.Error.Code)
	}
	return e.Error.Code
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	body := `{"display_name":"Mother"}`
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"no header", map[string]string{"Cookie": f.cookie()}, 403, "csrf"},
		{"wrong token", map[string]string{"Cookie": f.cookie(), "X-Hearth-CSRF": "1"}, 403, "csrf"},
		{"cross origin", map[string]string{"Cookie": f.cookie(), "X-Hearth-CSRF": f.csrf, "Origin": "https://evil.example"}, 403, "cross_origin"},
		{"right token", map[string]string{"Cookie": f.cookie(), "X-Hearth-CSRF": f.csrf, "Origin": f.srv.URL}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.req(t, "PATCH", "/api/v1/me", body, tt.hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("PATCH /me = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.code != "" {
				if got := errorCode(t, resp); got != tt.code {
					t.Fatalf("code = %q, want %q", got, tt.code)
				}
			}
		})
	}
	// A bearer token is not ambient, so it needs no CSRF header.
	pat, _, _ := f.auth.CreateToken(mustUser(t, f).ID, "script")
	if resp := f.req(t, "PATCH", "/api/v1/me", body, map[string]string{"Authorization": "Bearer " + pat}); resp.StatusCode != 200 {
		t.Fatalf("PATCH /me with bearer = %d", resp.StatusCode)
	}
	// Login without the header is refused too (login CSRF).
	if resp := f.req(t, "POST", "/api/v1/auth/login", `{"name":"mum","password":"correct horse"}`, nil); resp.StatusCode != 403 {
		t.Fatalf("login without CSRF header = %d", resp.StatusCode)
	}
}

func mustUser(t *testing.T, f *fixture) auth.User {
	u, err := f.auth.UserByName("mum")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestBadBodies(t *testing.T) {
	f := newFixture(t)
	hdr := map[string]string{"Cookie": f.cookie(), "X-Hearth-CSRF": f.csrf, "Content-Type": "application/json"}
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed", `{"name":`, 400, "invalid_request"},
		{"empty", ``, 400, "invalid_request"},
		{"unknown field", `{"name":"x","password":"long enough","admin":true}`, 400, "invalid_request"},
		{"wrong type", `{"name":7,"password":"long enough"}`, 400, "invalid_request"},
		{"trailing data", `{"name":"kid","password":"long enough"} {}`, 400, "invalid_request"},
		{"oversized", `{"name":"kid","password":"` + strings.Repeat("x", 100<<10) + `"}`, 413, "too_large"},
		{"invalid name", `{"name":"Kid!","password":"long enough"}`, 422, "invalid_name"},
		{"weak password", `{"name":"kid","password":"short"}`, 422, "weak_password"},
		{"ok", `{"name":"kid","password":"long enough"}`, 201, ""},
		{"taken", `{"name":"kid","password":"long enough"}`, 409, "name_taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.req(t, "POST", "/api/v1/admin/users", tt.body, hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.code != "" {
				if got := errorCode(t, resp); got != tt.code {
					t.Fatalf("code = %q, want %q", got, tt.code)
				}
			}
		})
	}
	resp := f.req(t, "POST", "/api/v1/admin/users", `name=kid`, map[string]string{"Cookie": f.cookie(), "X-Hearth-CSRF": f.csrf, "Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != 415 {
		t.Fatalf("form body = %d, want 415", resp.StatusCode)
	}
}

func TestOnlyPublicRoutesAnswerWithoutSession(t *testing.T) {
	f := newFixture(t)
	public := map[string]int{
		"GET /healthz":                200,
		"GET /readyz":                 200,
		"GET /api/v1/status":          200,
		"GET /":                       200,
		"GET /login":                  200,
		"GET /join/abc":               200,
		"GET /app.js":                 200,
		"GET /api/v1/invites/nope":    404,
		"GET /api/v1/me":              401,
		"GET /api/v1/sessions":        401,
		"GET /api/v1/admin/users":     401,
		"GET /api/v1/admin/invites":   401,
		"GET /api/v1/qr?data=x":       401,
		"GET /api/v1/ws":              401,
		"POST /api/v1/admin/invites":  401,
		"DELETE /api/v1/sessions/abc": 401,
		"GET /api/v1/nothing":         404,
		"GET /nothing.js":             404,
	}
	for route, want := range public {
		method, path, _ := strings.Cut(route, " ")
		resp := f.req(t, method, path, "", map[string]string{"X-Hearth-CSRF": "1"})
		if resp.StatusCode != want {
			t.Errorf("%s without session = %d, want %d", route, resp.StatusCode, want)
		}
	}
	// /metrics answers loopback (the test client is on loopback).
	if resp := f.req(t, "GET", "/metrics", "", nil); resp.StatusCode != 200 {
		t.Errorf("GET /metrics from loopback = %d", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	page := f.req(t, "GET", "/app/devices", "", nil)
	csp := page.Header.Get("Content-Security-Policy")
	body, _ := io.ReadAll(page.Body)
	m := regexp.MustCompile(`'nonce-([A-Za-z0-9+/=]+)'`).FindStringSubmatch(csp)
	if m == nil {
		t.Fatalf("page CSP has no nonce: %q", csp)
	}
	nonce := m[1]
	if !bytes.Contains(body, []byte(`nonce="`+nonce+`"`)) {
		t.Fatalf("page script does not carry the CSP nonce %q: %s", nonce, body)
	}
	if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("page CSP = %q", csp)
	}
	again := f.req(t, "GET", "/app/devices", "", nil)
	if again.Header.Get("Content-Security-Policy") == csp {
		t.Fatal("two responses share a nonce")
	}
	for _, path := range []string{"/app", "/api/v1/status", "/healthz"} {
		h := f.req(t, "GET", path, "", nil).Header
		want := map[string]string{
			"X-Content-Type-Options": "nosniff",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
		}
		for k, v := range want {
			if h.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", path, k, h.Get(k), v)
			}
		}
		if !strings.Contains(h.Get("Permissions-Policy"), "microphone=(self)") {
			t.Errorf("%s: Permissions-Policy = %q", path, h.Get("Permissions-Policy"))
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS sent over plain HTTP", path)
		}
	}
}

func TestLoginThrottledWithRetryAfter(t *testing.T) {
	f := newFixture(t)
	var last *http.Response
	for range 7 {
		last = f.req(t, "POST", "/api/v1/auth/login", `{"name":"mum","password":"wrong password"}`, map[string]string{"X-Hearth-CSRF": "1"})
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("7th wrong login = %d Retry-After %q, want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
}

func TestLogoutEndsSession(t *testing.T) {
	f := newFixture(t)
	hdr := map[string]string{"Cookie": f.cookie(), "X-Hearth-CSRF": f.csrf}
	if resp := f.req(t, "POST", "/api/v1/auth/logout", "", hdr); resp.StatusCode != 204 {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	if resp := f.req(t, "GET", "/api/v1/me", "", hdr); resp.StatusCode != 401 {
		t.Fatalf("me after logout = %d", resp.StatusCode)
	}
}

func TestQRCode(t *testing.T) {
	f := newFixture(t)
	resp := f.req(t, "GET", "/api/v1/qr?data=https%3A%2F%2Fhearth.local%2Fjoin%2Fx", "", map[string]string{"Cookie": f.cookie()})
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Fatalf("qr = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
