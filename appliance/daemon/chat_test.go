package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/admin"
)

// household starts a daemon with an admin (mum) and members dad and kid,
// each signed in with their own client.
func household(t *testing.T) (string, map[string]*client) {
	t.Helper()
	dir := t.TempDir()
	_, url := start(t, dir)
	ops, closeOps, err := admin.Connect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ops.SetupToken(context.Background())
	closeOps()
	cs := map[string]*client{"mum": newClient(t, url)}
	var si signIn
	cs["mum"].signedIn(cs["mum"].do("POST", "/api/v1/setup", map[string]string{"token": tok, "name": "mum", "password": "correct horse"}, &si), si, 201)
	for _, name := range []string{"dad", "kid"} {
		var inv struct{ Token string }
		cs["mum"].do("POST", "/api/v1/admin/invites", map[string]any{"uses": 1, "ttl_seconds": 600}, &inv)
		c := newClient(t, url)
		c.signedIn(c.do("POST", "/api/v1/invites/"+inv.Token+"/accept", map[string]string{"name": name, "password": "long enough"}, &si), si, 201)
		cs[name] = c
	}
	return url, cs
}

type channelView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Unread  int    `json:"unread"`
	LastSeq uint64 `json:"last_seq"`
}

func channelNamed(t *testing.T, c *client, name string) channelView {
	t.Helper()
	var out struct{ Channels []channelView }
	c.do("GET", "/api/v1/channels", nil, &out)
	for _, ch := range out.Channels {
		if ch.Name == name {
			return ch
		}
	}
	t.Fatalf("no channel %q in %+v", name, out.Channels)
	return channelView{}
}

type event struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id"`
	Data json.RawMessage `json:"data"`
}

// stream is a realtime connection that records the stored events it gets.
type stream struct {
	ws   *websocket.Conn
	mu   sync.Mutex
	evs  []event
	last uint64
	done chan struct{}
}

func openStream(t *testing.T, c *client, base string, since uint64) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := strings.Replace(base, "http", "ws", 1) + "/api/v1/ws"
	if since > 0 {
		u += fmt.Sprintf("?since=%d", since)
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		t.Fatalf("dial realtime: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	s := &stream{ws: ws, last: since, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var ev event
			json.Unmarshal(b, &ev)
			s.mu.Lock()
			if ev.ID > 0 {
				s.evs = append(s.evs, ev)
				s.last = ev.ID
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ws.CloseNow() })
	return s
}

func (s *stream) dump() string { s.mu.Lock(); defer s.mu.Unlock(); return fmt.Sprint(s.evs) }

func (s *stream) close() {
	s.ws.Close(websocket.StatusNormalClosure, "")
	<-s.done
}

// waitFor waits until the stream has an event of typ whose data contains
// substr.
func (s *stream) waitFor(t *testing.T, typ, substr string) event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, ev := range s.evs {
			if ev.Type == typ && strings.Contains(string(ev.Data), substr) {
				s.mu.Unlock()
				return ev
			}
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s event containing %q in %s", typ, substr, s.dump())
	return event{}
}

func (s *stream) messageTexts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.evs {
		if ev.Type == "message.new" {
			var m struct{ Text string }
			json.Unmarshal(ev.Data, &m)
			out = append(out, m.Text)
		}
	}
	return out
}

func post(t *testing.T, c *client, ch, text, key string) int {
	t.Helper()
	return c.do("POST", "/api/v1/channels/"+ch+"/messages", map[string]string{"text": text, "key": key}, nil)
}

func TestChatLiveAndResumeExactlyOnce(t *testing.T) {
	url, cs := household(t)
	general := channelNamed(t, cs["mum"], "general")
	dad := openStream(t, cs["dad"], url, 0)
	if s := post(t, cs["mum"], general.ID, "first", "k1"); s != 201 {
		t.Fatalf("post = %d", s)
	}
	dad.waitFor(t, "message.new", `"text":"first"`)
	// Dad's phone drops off; messages arrive meanwhile (one resent).
	dad.close()
	last := dad.last
	for i, text := range []string{"second", "third", "fourth"} {
		if s := post(t, cs["mum"], general.ID, text, fmt.Sprintf("k%d", i+2)); s != 201 {
			t.Fatalf("post = %d", s)
		}
	}
	if s := post(t, cs["mum"], general.ID, "fourth", "k4"); s != 201 {
		t.Fatalf("idempotent resend = %d", s)
	}
	back := openStream(t, cs["dad"], url, last)
	post(t, cs["mum"], general.ID, "fifth", "k5")
	back.waitFor(t, "message.new", `"text":"fifth"`)
	if got := strings.Join(back.messageTexts(), ","); got != "second,third,fourth,fifth" {
		t.Fatalf("after resume dad got %q, want each missed message once, in order", got)
	}
	var page struct{ Messages []struct{ Text string } }
	cs["kid"].do("GET", "/api/v1/channels/"+general.ID+"/messages?limit=10", nil, &page)
	if len(page.Messages) != 5 {
		t.Fatalf("history has %d messages, want 5 (no duplicate from the resend)", len(page.Messages))
	}
}

func TestChatPermissionsOnEveryPath(t *testing.T) {
	url, cs := household(t)
	var dadUser struct {
		User struct{ ID string }
	}
	cs["dad"].do("GET", "/api/v1/me", nil, &dadUser)
	var created struct{ Channel channelView }
	if s := cs["mum"].do("POST", "/api/v1/channels", map[string]any{"name": "parents", "kind": "private", "members": []string{dadUser.User.ID}}, &created); s != 201 {
		t.Fatalf("create private channel = %d", s)
	}
	priv := created.Channel.ID
	kid := openStream(t, cs["kid"], url, 0)
	dad := openStream(t, cs["dad"], url, 0)
	post(t, cs["dad"], priv, "secret present plan", "p1")
	req, _ := http.NewRequest("POST", url+"/api/v1/channels/"+priv+"/attachments?name=list.txt", strings.NewReader("bike, book"))
	req.Header.Set("X-Hearth-CSRF", cs["dad"].csrf)
	resp, err := cs["dad"].http.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload = %v %v", resp, err)
	}
	var up struct{ Attachment struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	cs["dad"].do("POST", "/api/v1/channels/"+priv+"/messages", map[string]any{"text": "the list", "attachments": []string{up.Attachment.ID}}, nil)
	dad.waitFor(t, "message.new", "the list")

	checks := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/v1/channels/" + priv + "/messages", nil, 404},
		{"POST", "/api/v1/channels/" + priv + "/messages", map[string]string{"text": "x"}, 404},
		{"POST", "/api/v1/channels/" + priv + "/read", map[string]int{"seq": 1}, 404},
		{"PATCH", "/api/v1/channels/" + priv + "/messages/1", map[string]string{"text": "x"}, 404},
		{"DELETE", "/api/v1/channels/" + priv + "/messages/1", nil, 404},
		{"PUT", "/api/v1/channels/" + priv + "/messages/1/reactions/%F0%9F%91%8D", nil, 404},
		{"GET", "/api/v1/attachments/" + up.Attachment.ID, nil, 404},
		{"PATCH", "/api/v1/channels/" + priv, map[string]string{"topic": "x"}, 404},
	}
	for _, c := range checks {
		if s := cs["kid"].do(c.method, c.path, c.body, nil); s != c.want {
			t.Errorf("kid %s %s = %d, want %d", c.method, c.path, s, c.want)
		}
	}
	var res struct{ Results []any }
	cs["kid"].do("GET", "/api/v1/search?q=secret", nil, &res)
	if len(res.Results) != 0 {
		t.Errorf("kid finds %d private messages", len(res.Results))
	}
	var chs struct{ Channels []channelView }
	cs["kid"].do("GET", "/api/v1/channels", nil, &chs)
	for _, ch := range chs.Channels {
		if ch.ID == priv {
			t.Error("kid lists the private channel")
		}
	}
	// The kid's realtime stream carried nothing of it.
	time.Sleep(100 * time.Millisecond)
	kid.mu.Lock()
	for _, ev := range kid.evs {
		if strings.Contains(string(ev.Data), priv) || strings.Contains(string(ev.Data), "secret") {
			t.Errorf("kid received %s event of the private channel", ev.Type)
		}
	}
	kid.mu.Unlock()
	// Dad downloads with a Range request.
	req, _ = http.NewRequest("GET", url+"/api/v1/attachments/"+up.Attachment.ID, nil)
	req.Header.Set("Range", "bytes=6-9")
	resp, err = cs["dad"].http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(b) != "book" || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("range download = %d %q %s %s", resp.StatusCode, b, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
}

func TestChatFanOutToManyClients(t *testing.T) {
	url, cs := household(t)
	general := channelNamed(t, cs["mum"], "general")
	const n = 60
	streams := make([]*stream, n)
	for i := range streams {
		who := []string{"mum", "dad", "kid"}[i%3]
		streams[i] = openStream(t, cs[who], url, 0)
	}
	const msgs = 20
	for i := range msgs {
		post(t, cs["kid"], general.ID, fmt.Sprintf("m%02d", i), fmt.Sprintf("f%d", i))
	}
	for i, s := range streams {
		s.waitFor(t, "message.new", fmt.Sprintf("m%02d", msgs-1))
		got := s.messageTexts()
		if len(got) != msgs {
			t.Fatalf("client %d got %d messages, want %d", i, len(got), msgs)
		}
		for j, text := range got {
			if text != fmt.Sprintf("m%02d", j) {
				t.Fatalf("client %d message %d = %q: out of order", i, j, text)
			}
		}
	}
}

func TestChatBadInput(t *testing.T) {
	url, cs := household(t)
	general := channelNamed(t, cs["mum"], "general")
	var e struct{ Error struct{ Code string } }
	tests := []struct {
		body any
		want int
		code string
	}{
		{map[string]string{"text": ""}, 422, "empty_message"},
		{map[string]string{"text": strings.Repeat("x", 4001)}, 413, "message_too_long"},
		{map[string]any{"text": "x", "reply_to": 999}, 404, "message_not_found"},
	}
	for _, tt := range tests {
		e.Error.Code = ""
		if s := cs["kid"].do("POST", "/api/v1/channels/"+general.ID+"/messages", tt.body, &e); s != tt.want || e.Error.Code != tt.code {
			t.Errorf("post %v = %d %s, want %d %s", tt.body, s, e.Error.Code, tt.want, tt.code)
		}
	}
	if s := cs["kid"].do("POST", "/api/v1/channels/nope/messages", map[string]string{"text": "x"}, nil); s != 404 {
		t.Errorf("post to unknown channel = %d", s)
	}
	req, _ := http.NewRequest("POST", url+"/api/v1/channels/"+general.ID+"/attachments?name=..%2Fescape", bytes.NewReader([]byte("x")))
	req.Header.Set("X-Hearth-CSRF", cs["kid"].csrf)
	resp, _ := cs["kid"].http.Do(req)
	if resp.StatusCode != 422 {
		t.Errorf("upload with a path in its name = %d", resp.StatusCode)
	}
	resp.Body.Close()
	// Malformed realtime messages are answered, the connection stays.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1)+"/api/v1/ws",
		&websocket.DialOptions{HTTPClient: cs["kid"].http, HTTPHeader: http.Header{"Origin": {url}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Read(ctx) // hello
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"typing","data":{"channel":"nope"}}`))
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"type":"error"`) {
			break
		}
	}
}
