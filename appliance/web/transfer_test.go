package web_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store/storetest"
	"github.com/hearth-home/hearth/appliance/transfer"
	"github.com/hearth-home/hearth/appliance/web"
)

// transferFixture serves the web handler with file transfer on, TLS
// cookies, and TURN hooks that say whom they were asked for.
type transferFixture struct {
	srv     *httptest.Server
	svc     *transfer.Service
	session string // mum's session cookie value
	userID  string

	mu    sync.Mutex
	codes []string // pairing codes from transfer.created events
}

func newTransferFixture(t *testing.T) *transferFixture {
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
	f := &transferFixture{}
	f.svc, err = transfer.New(transfer.Config{Online: h.Clients, Store: st, Publish: func(ev hub.Event) {
		if ev.Type == transfer.TypeCreated {
			b, _ := json.Marshal(ev.Data)
			var d struct{ Code string }
			json.Unmarshal(b, &d)
			f.mu.Lock()
			f.codes = append(f.codes, d.Code)
			f.mu.Unlock()
		}
		h.Publish(ev)
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := web.New(web.Config{Auth: a, Hub: h, Chat: c, UI: ui, Name: "hearth", Version: "test", TLS: true, Transfer: f.svc,
		TURNCredentials: func(_, user string) (any, error) { return map[string]any{"for": user}, nil },
		GuestTURNCredentials: func(_, user string, until time.Time) (any, error) {
			return map[string]any{"for": user, "ttl": int(time.Until(until) / time.Second)}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s)
	t.Cleanup(func() { h.Close(context.Background()); f.srv.Close() })
	tok, _ := a.SetupToken()
	u, _, session, err := a.Setup(context.Background(), tok, auth.NewUser{Name: "mum", Password: "correct horse"}, auth.Device{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.session, f.userID = session, u.ID
	return f
}

// guestCode makes a guest offer from mum and returns its pairing code.
func (f *transferFixture) guestCode(t *testing.T) string {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"ts": time.Now().UnixMilli(), "nonce": rand.Text(), "guest": true,
		"files": []map[string]any{{"name": "a.txt", "size": 1}}})
	if err := f.svc.Handle(context.Background(), hub.Client{UserID: f.userID, SessionID: "s-mum", Name: "mum"}, transfer.TypeOffer, data); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.codes[len(f.codes)-1]
}

func (f *transferFixture) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, string) {
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
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestGuestTicketScope(t *testing.T) {
	f := newTransferFixture(t)
	code := f.guestCode(t)
	pair := map[string]string{"X-Hearth-CSRF": "1", "Content-Type": "application/json"}
	resp, body := f.do(t, "POST", "/api/v1/transfer/pair", `{"code":"`+code+`"}`, pair)
	if resp.StatusCode != 200 {
		t.Fatalf("pair = %d %s", resp.StatusCode, body)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == web.GuestCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/api/" || ck.MaxAge <= 0 || ck.MaxAge > 3600 {
		t.Fatalf("guest cookie = %+v, want HttpOnly, Secure (TLS), SameSite=Strict, at most an hour", ck)
	}
	var paired struct {
		Ticket   string
		UserID   string `json:"user_id"`
		Transfer struct{ ID string }
	}
	json.Unmarshal([]byte(body), &paired)
	if paired.Ticket != ck.Value || paired.UserID != "guest:"+paired.Transfer.ID {
		t.Fatalf("pair body = %s", body)
	}

	guestCookie := web.GuestCookie + "=" + paired.Ticket
	member := web.CookieName + "=" + f.session
	for _, tc := range []struct {
		name string
		path string
		hdr  map[string]string
		want string // whom TURN credentials were made for; "" for a 401
	}{
		{"guest cookie", "/api/v1/turn/credentials", map[string]string{"Cookie": guestCookie}, "guest:" + paired.Transfer.ID},
		{"guest bearer", "/api/v1/turn/credentials", map[string]string{"Authorization": "Bearer " + paired.Ticket}, "guest:" + paired.Transfer.ID},
		{"member", "/api/v1/turn/credentials", map[string]string{"Cookie": member}, f.userID},
		// A member's browser that also paired: the session wins unless
		// the page asks for the guest.
		{"both cookies", "/api/v1/turn/credentials", map[string]string{"Cookie": member + "; " + guestCookie}, f.userID},
		{"both cookies, ?guest=1", "/api/v1/turn/credentials?guest=1", map[string]string{"Cookie": member + "; " + guestCookie}, "guest:" + paired.Transfer.ID},
		{"signed-out session and guest", "/api/v1/turn/credentials", map[string]string{"Cookie": web.CookieName + "=hs_stale; " + guestCookie}, "guest:" + paired.Transfer.ID},
		{"wrong ticket", "/api/v1/turn/credentials", map[string]string{"Authorization": "Bearer hg_nope"}, ""},
		{"nothing", "/api/v1/turn/credentials", nil, ""},
		{"guest on /me", "/api/v1/me", map[string]string{"Cookie": guestCookie}, ""},
		{"guest bearer on /me", "/api/v1/me", map[string]string{"Authorization": "Bearer " + paired.Ticket}, ""},
		{"guest on devices", "/api/v1/transfer/devices", map[string]string{"Authorization": "Bearer " + paired.Ticket}, ""},
		{"guest on history", "/api/v1/transfer/history", map[string]string{"Cookie": guestCookie}, ""},
	} {
		resp, body := f.do(t, "GET", tc.path, "", tc.hdr)
		if tc.want == "" {
			if resp.StatusCode != 401 {
				t.Errorf("%s: GET %s = %d %s, want 401", tc.name, tc.path, resp.StatusCode, body)
			}
			continue
		}
		var got struct {
			For string
			TTL int
		}
		json.Unmarshal([]byte(body), &got)
		if resp.StatusCode != 200 || got.For != tc.want {
			t.Errorf("%s: GET %s = %d %s, want credentials for %s", tc.name, tc.path, resp.StatusCode, body, tc.want)
		}
		if strings.HasPrefix(tc.want, "guest:") && (got.TTL <= 0 || got.TTL > 3600) {
			t.Errorf("%s: guest credentials asked to last %d s, want within the ticket's hour", tc.name, got.TTL)
		}
	}

	// The guest page is the app, and serving it leaves the code alone.
	code2 := f.guestCode(t)
	if resp, body := f.do(t, "GET", "/t/"+code2, "", nil); resp.StatusCode != 200 || !strings.Contains(body, "<script") {
		t.Fatalf("GET /t/CODE = %d", resp.StatusCode)
	}
	if resp, body := f.do(t, "POST", "/api/v1/transfer/pair", `{"code":"`+code2+`"}`, pair); resp.StatusCode != 200 {
		t.Fatalf("pair after opening the link = %d %s", resp.StatusCode, body)
	}
	// Pairing needs the CSRF header like every public POST.
	if resp, _ := f.do(t, "POST", "/api/v1/transfer/pair", `{"code":"`+f.guestCode(t)+`"}`, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 403 {
		t.Fatalf("pair without CSRF header = %d, want 403", resp.StatusCode)
	}
}

func TestPairRefusedAndThrottled(t *testing.T) {
	f := newTransferFixture(t)
	code := f.guestCode(t)
	pair := map[string]string{"X-Hearth-CSRF": "1", "Content-Type": "application/json"}
	for i, body := range []string{`{"code":"ZZZZZZZZZZ"}`, `{"code":"short"}`, `{"code":""}`, `{"code":"ZZZZZ-ZZZZY"}`, `{"code":"ZZZZZ-ZZZZX"}`, `{"code":"ZZZZZ-ZZZZW"}`} {
		resp, got := f.do(t, "POST", "/api/v1/transfer/pair", body, pair)
		if resp.StatusCode != 404 || !strings.Contains(got, `"invalid_code"`) {
			t.Fatalf("wrong code %d = %d %s, want 404 invalid_code", i+1, resp.StatusCode, got)
		}
	}
	resp, got := f.do(t, "POST", "/api/v1/transfer/pair", `{"code":"`+code+`"}`, pair)
	if resp.StatusCode != 429 || !strings.Contains(got, `"throttled"`) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 6 wrong codes = %d %s (Retry-After %q), want 429 throttled", resp.StatusCode, got, resp.Header.Get("Retry-After"))
	}
	if resp, got := f.do(t, "POST", "/api/v1/transfer/pair", `{"code":1}`, pair); resp.StatusCode != 400 {
		t.Fatalf("malformed body = %d %s", resp.StatusCode, got)
	}
}
