package proof_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// raw runs a request through the handler as it is, from the LAN.
func (a *appliance) raw(req *http.Request) result {
	req.RemoteAddr = lanAddr
	w := httptest.NewRecorder()
	a.d.Handler().ServeHTTP(w, req)
	res := result{status: w.Code, header: w.Header(), body: w.Body.String()}
	var e struct {
		Error struct{ Code string }
	}
	jsonInto(res.body, &e)
	res.code = e.Error.Code
	return res
}

func TestWebAttacks(t *testing.T) {
	h := newHousehold(t, nil)
	kid := h.signIn(t, "kid", pw)
	post := func(csrf, origin string) result {
		req := httptest.NewRequest("POST", "http://hearth.local/api/v1/channels/"+h.public.ID+"/messages", strings.NewReader(`{"text":"hi"}`))
		req.AddCookie(&http.Cookie{Name: "hearth_session", Value: kid.cookie})
		if csrf != "" {
			req.Header.Set("X-Hearth-CSRF", csrf)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return h.raw(req)
	}

	t.Run("csrf", func(t *testing.T) {
		for _, tt := range []struct {
			name, csrf, origin string
			status             int
		}{
			{"no token", "", "", 403},
			{"wrong token", "0123456789abcdef0123456789abcdef", "", 403},
			{"another session's token", h.signIn(t, "kid", pw).csrf, "", 403},
			{"right token, other origin", kid.csrf, "https://evil.example", 403},
			{"right token", kid.csrf, "", 201},
			{"right token, same origin", kid.csrf, "http://hearth.local", 201},
		} {
			if r := post(tt.csrf, tt.origin); r.status != tt.status {
				t.Errorf("post with %s = %d %s, want %d", tt.name, r.status, r.code, tt.status)
			}
		}
	})

	t.Run("cross-origin websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hdr := http.Header{"Cookie": {"hearth_session=" + kid.cookie}}
		for _, origin := range []string{"https://evil.example", "http://hearth.local.evil.example", "null"} {
			hdr.Set("Origin", origin)
			_, resp, err := websocket.Dial(ctx, strings.Replace(h.url, "http", "ws", 1)+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("WebSocket from Origin %s = %v (%v), want 403", origin, err, resp)
			}
		}
		hdr.Set("Origin", h.url)
		ws, _, err := websocket.Dial(ctx, strings.Replace(h.url, "http", "ws", 1)+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			t.Fatalf("same-origin WebSocket: %v", err)
		}
		ws.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("clickjacking and csp", func(t *testing.T) {
		for _, path := range []string{"/", "/app", "/login", "/api/v1/status", "/healthz", "/app.js"} {
			r := h.raw(httptest.NewRequest("GET", "http://hearth.local"+path, nil))
			csp := r.header.Get("Content-Security-Policy")
			if r.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("GET %s: X-Frame-Options %q, CSP %q: may be framed", path, r.header.Get("X-Frame-Options"), csp)
			}
			script := directive(csp, "script-src")
			if script == "" {
				script = directive(csp, "default-src")
			}
			if strings.Contains(script, "'unsafe-inline'") || strings.Contains(script, "'unsafe-eval'") || script == "" {
				t.Errorf("GET %s: script policy %q allows inline script or is missing", path, script)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no nosniff", path)
			}
		}
	})

	t.Run("session fixation", func(t *testing.T) {
		// An attacker plants a cookie of their choosing, and also one of
		// their own real sessions; after the victim signs in, neither is
		// the victim's session.
		own := h.signIn(t, "lodger", pw)
		planted := []*session{{cookie: "attacker-chosen-value", csrf: "1"}, own}
		for _, ps := range planted {
			p := ps.cookie
			req := httptest.NewRequest("POST", "http://hearth.local/api/v1/auth/login", strings.NewReader(`{"name":"kid","password":"`+pw+`"}`))
			req.AddCookie(&http.Cookie{Name: "hearth_session", Value: p})
			req.Header.Set("X-Hearth-CSRF", ps.csrf)
			w := httptest.NewRecorder()
			req.RemoteAddr = lanAddr
			h.d.Handler().ServeHTTP(w, req)
			var got string
			for _, c := range w.Result().Cookies() {
				if c.Name == "hearth_session" {
					got = c.Value
				}
			}
			if w.Code != 200 || got == "" || got == p {
				t.Fatalf("sign-in with a planted cookie = %d, new cookie %q (planted %q)", w.Code, got, p)
			}
			var me struct {
				User struct{ Name string } `json:"user"`
			}
			r := h.call("GET", "/api/v1/me", &session{cookie: p}, "")
			jsonInto(r.body, &me)
			if me.User.Name == "kid" {
				t.Errorf("the planted cookie %q became kid's session", p)
			}
		}
	})

	t.Run("brute force", func(t *testing.T) {
		// Passwords: per account, whatever the address.
		var last result
		for i := range 12 {
			req := httptest.NewRequest("POST", "http://hearth.local/api/v1/auth/login", strings.NewReader(`{"name":"mum","password":"guess `+strconv.Itoa(i)+`"}`))
			req.Header.Set("X-Hearth-CSRF", "1")
			last = h.raw(req)
			if last.status == 429 {
				break
			}
		}
		throttled(t, "password guessing", last)
		// Invite tokens: per address.
		for range 40 {
			b := make([]byte, 16)
			rand.Read(b)
			last = h.raw(httptest.NewRequest("GET", "http://hearth.local/api/v1/invites/"+hex.EncodeToString(b), nil))
			if last.status == 429 {
				break
			}
		}
		throttled(t, "invite token guessing", last)
		req := httptest.NewRequest("POST", "http://hearth.local/api/v1/invites/nosuch/accept", strings.NewReader(`{"name":"x","password":"long enough"}`))
		req.Header.Set("X-Hearth-CSRF", "1")
		throttled(t, "accepting a guessed invite", h.raw(req))
		// Guest pairing codes: per address.
		for range 40 {
			b := make([]byte, 5)
			rand.Read(b)
			req := httptest.NewRequest("POST", "http://hearth.local/api/v1/transfer/pair", strings.NewReader(`{"code":"`+strings.ToUpper(hex.EncodeToString(b))+`"}`))
			req.Header.Set("X-Hearth-CSRF", "1")
			if last = h.raw(req); last.status == 429 {
				break
			}
		}
		throttled(t, "guest code guessing", last)
	})
}

func throttled(t *testing.T, what string, r result) {
	t.Helper()
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != 429 || err != nil || ra <= 0 {
		t.Errorf("%s: last answer %d %s, Retry-After %q; want 429 with Retry-After", what, r.status, r.code, r.header.Get("Retry-After"))
	}
}

// directive returns one directive of a CSP.
func directive(csp, name string) string {
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		if d == name || strings.HasPrefix(d, name+" ") {
			return d
		}
	}
	return ""
}
