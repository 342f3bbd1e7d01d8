package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rt is a realtime connection that records every event it gets,
// ephemeral ones included, and sends transfer messages.
type rt struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
	mu   sync.Mutex
	evs  []event
	live chan event // every event too, for tests that react (dropped when full)
	done chan struct{}
}

// openRT dials /api/v1/ws as c (cookies), with extra headers, and waits
// for the hello.
func openRT(t *testing.T, name string, c *client, base string, hdr http.Header) *rt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{"Origin": {base}}
	for k, v := range hdr {
		h[k] = v
	}
	ws, resp, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/v1/ws", &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("%s: dial realtime: %v (status %d)", name, err, status)
	}
	ws.SetReadLimit(1 << 20)
	r := &rt{t: t, name: name, ws: ws, live: make(chan event, 1024), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var ev event
			json.Unmarshal(b, &ev)
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
			select {
			case r.live <- ev:
			default:
			}
		}
	}()
	t.Cleanup(func() { ws.CloseNow(); <-r.done })
	r.waitFor("hello", "")
	return r
}

func (r *rt) send(typ string, data map[string]any) {
	r.t.Helper()
	if _, ok := data["ts"]; !ok {
		data["ts"] = time.Now().UnixMilli()
	}
	if _, ok := data["nonce"]; !ok {
		data["nonce"] = rand.Text()
	}
	raw, _ := json.Marshal(data)
	b, _ := json.Marshal(map[string]any{"type": typ, "data": json.RawMessage(raw)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.ws.Write(ctx, websocket.MessageText, b); err != nil {
		r.t.Fatalf("%s: send %s: %v", r.name, typ, err)
	}
}

func (r *rt) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.evs {
		fmt.Fprintf(&b, "\n  %s %s", ev.Type, ev.Data)
	}
	return b.String()
}

// waitFor returns the first event of typ whose data contains substr.
func (r *rt) waitFor(typ, substr string) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ev := range r.evs {
			if ev.Type == typ && strings.Contains(string(ev.Data), substr) {
				r.mu.Unlock()
				var d map[string]any
				json.Unmarshal(ev.Data, &d)
				return d
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("%s: no %s event containing %q in:%s", r.name, typ, substr, r.dump())
	return nil
}

// sync sends a ping and waits for its pong, so everything the server
// sent this connection before has arrived.
func (r *rt) sync() {
	r.t.Helper()
	r.mu.Lock()
	pongs := 0
	for _, ev := range r.evs {
		if ev.Type == "pong" {
			pongs++
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		n := 0
		for _, ev := range r.evs {
			if ev.Type == "pong" {
				n++
			}
		}
		r.mu.Unlock()
		if n > pongs {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("%s: no pong", r.name)
}

// types lists the event types received whose type starts with prefix.
func (r *rt) types(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		if strings.HasPrefix(ev.Type, prefix) {
			out = append(out, ev.Type)
		}
	}
	return out
}

type me struct {
	User      struct{ ID, Name string }
	SessionID string `json:"session_id"`
}

func whoami(t *testing.T, c *client) me {
	var m me
	if s := c.do("GET", "/api/v1/me", nil, &m); s != 200 {
		t.Fatalf("GET /api/v1/me = %d", s)
	}
	return m
}

var oneFile = []map[string]any{{"name": "holiday.jpg", "size": 2048, "type": "image/jpeg"}}

func TestTransferSignalingBetweenMembers(t *testing.T) {
	url, cs := household(t)
	mum, dad, kid := whoami(t, cs["mum"]), whoami(t, cs["dad"]), whoami(t, cs["kid"])
	mumRT := openRT(t, "mum", cs["mum"], url, nil)
	dadRT := openRT(t, "dad", cs["dad"], url, nil)
	kidRT := openRT(t, "kid", cs["kid"], url, nil)

	// Dad sees mum's and kid's devices, not his own.
	var devs struct {
		Devices []struct{ UserID, Name, SessionID, Device string } `json:"devices"`
	}
	if s := cs["dad"].do("GET", "/api/v1/transfer/devices", nil, &devs); s != 200 {
		t.Fatalf("devices = %d", s)
	}
	seen := map[string]bool{}
	for _, d := range devs.Devices {
		seen[d.Name] = true
		if d.Name == "dad" {
			t.Fatalf("dad's own session is listed: %+v", devs)
		}
	}
	if !seen["mum"] || !seen["kid"] || len(devs.Devices) != 2 {
		t.Fatalf("devices = %+v, want mum and kid", devs.Devices)
	}

	mumRT.send("transfer.offer", map[string]any{"to_user": dad.User.ID, "files": oneFile, "ref": "o1"})
	created := mumRT.waitFor("transfer.created", `"ref":"o1"`)
	id := created["id"].(string)
	inc := dadRT.waitFor("transfer.incoming", id)
	from := inc["from"].(map[string]any)
	if from["user_id"] != mum.User.ID || from["name"] != "mum" || from["session_id"] != mum.SessionID {
		t.Fatalf("incoming from = %v, want mum's session %s", from, mum.SessionID)
	}
	dadRT.send("transfer.accept", map[string]any{"id": id})
	acc := mumRT.waitFor("transfer.accepted", id)
	if acc["peer"].(map[string]any)["session_id"] != dad.SessionID {
		t.Fatalf("accepted by %v, want dad's session", acc["peer"])
	}
	mumRT.send("transfer.signal", map[string]any{"id": id, "sdp": map[string]any{"type": "offer", "sdp": "v=0\r\ns=mum-offer\r\n"}})
	dadRT.waitFor("transfer.signal", "mum-offer")
	dadRT.send("transfer.signal", map[string]any{"id": id, "sdp": map[string]any{"type": "answer", "sdp": "v=0\r\ns=dad-answer\r\n"}})
	dadRT.send("transfer.signal", map[string]any{"id": id, "candidate": map[string]any{"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMid": "0"}})
	mumRT.waitFor("transfer.signal", "dad-answer")
	mumRT.waitFor("transfer.signal", "typ host")

	// The kid sees none of it, and may not join in.
	kidRT.send("transfer.signal", map[string]any{"id": id, "sdp": map[string]any{"type": "offer", "sdp": "v=0\r\ns=kid\r\n"}, "ref": "k1"})
	if e := kidRT.waitFor("error", `"ref":"k1"`); e["code"] != "not_party" {
		t.Fatalf("kid's signal refused with %v, want not_party", e)
	}
	kidRT.send("transfer.accept", map[string]any{"id": id, "ref": "k2"})
	if e := kidRT.waitFor("error", `"ref":"k2"`); e["code"] != "taken" {
		t.Fatalf("kid's accept refused with %v, want taken", e)
	}
	mumRT.sync()
	dadRT.sync()
	kidRT.sync()
	if got := kidRT.types("transfer."); len(got) != 0 {
		t.Fatalf("kid received %v", got)
	}
	for _, r := range []*rt{mumRT, dadRT} {
		r.mu.Lock()
		for _, ev := range r.evs {
			if strings.Contains(string(ev.Data), "s=kid") {
				t.Errorf("%s received the kid's signal: %s", r.name, ev.Data)
			}
		}
		r.mu.Unlock()
	}

	// Stale and replayed messages are refused, with their ref.
	mumRT.send("transfer.resume", map[string]any{"id": id, "ts": time.Now().Add(-time.Minute).UnixMilli(), "ref": "old"})
	if e := mumRT.waitFor("error", `"ref":"old"`); e["code"] != "stale" {
		t.Fatalf("stale message refused with %v", e)
	}
	n := rand.Text()
	mumRT.send("transfer.resume", map[string]any{"id": id, "nonce": n})
	dadRT.waitFor("transfer.resume", id)
	mumRT.send("transfer.resume", map[string]any{"id": id, "nonce": n, "ref": "again"})
	if e := mumRT.waitFor("error", `"ref":"again"`); e["code"] != "replayed" {
		t.Fatalf("replayed message refused with %v", e)
	}

	// Both finish; history shows it, newest first, and can be cleared.
	mumRT.send("transfer.result", map[string]any{"id": id, "result": "done", "bytes": 2048, "files": 1})
	dadRT.send("transfer.result", map[string]any{"id": id, "result": "done", "bytes": 2048, "files": 1, "ref": "res"})
	mumRT.sync()
	dadRT.sync()
	var hist struct {
		Transfers []struct {
			ID, Direction, Peer, Result string
			Bytes                       int64
		}
	}
	if s := cs["mum"].do("GET", "/api/v1/transfer/history", nil, &hist); s != 200 || len(hist.Transfers) != 1 {
		t.Fatalf("mum's history = %d %+v", s, hist)
	}
	if h := hist.Transfers[0]; h.ID != id || h.Direction != "sent" || h.Peer != "dad" || h.Result != "done" || h.Bytes != 2048 {
		t.Fatalf("mum's history = %+v", h)
	}
	cs["dad"].do("GET", "/api/v1/transfer/history", nil, &hist)
	if len(hist.Transfers) != 1 || hist.Transfers[0].Direction != "received" {
		t.Fatalf("dad's history = %+v", hist)
	}
	if s := cs["mum"].do("DELETE", "/api/v1/transfer/history", nil, nil); s != 200 {
		t.Fatalf("clear history = %d", s)
	}
	cs["mum"].do("GET", "/api/v1/transfer/history", nil, &hist)
	if len(hist.Transfers) != 0 {
		t.Fatalf("after clearing, mum's history = %+v", hist)
	}
	cs["kid"].do("GET", "/api/v1/transfer/history", nil, &hist)
	if len(hist.Transfers) != 0 {
		t.Fatalf("kid's history = %+v", hist)
	}

	// Declines and offers to no one online.
	mumRT.send("transfer.offer", map[string]any{"to_session": kid.SessionID, "files": oneFile, "ref": "o2"})
	id2 := mumRT.waitFor("transfer.created", `"ref":"o2"`)["id"].(string)
	kidRT.waitFor("transfer.incoming", id2)
	kidRT.send("transfer.decline", map[string]any{"id": id2})
	if d := mumRT.waitFor("transfer.declined", id2); d["peer"].(map[string]any)["user_id"] != kid.User.ID {
		t.Fatalf("declined = %v", d)
	}
	mumRT.send("transfer.offer", map[string]any{"to_user": "nobody", "files": oneFile, "ref": "o3"})
	if e := mumRT.waitFor("error", `"ref":"o3"`); e["code"] != "offline" {
		t.Fatalf("offer to no one = %v, want offline", e)
	}
	// Past 100 messages in a burst: too_fast refusals, the connection stays.
	kidRT.sync()
	for range 115 {
		kidRT.send("transfer.resume", map[string]any{"id": id2})
	}
	kidRT.waitFor("error", "too_fast")
	kidRT.sync()

	// The counters show on /metrics (loopback).
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"hearth_transfer_offers_total 2", "hearth_transfers_live 0", "hearth_transfer_codes_issued_total 0", "hearth_transfer_signals_total 3"} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// An oversized message gets an error, not a dropped connection.
	mumRT.send("transfer.signal", map[string]any{"id": id2, "sdp": map[string]any{"type": "offer", "sdp": strings.Repeat("a", 70<<10)}})
	if e := mumRT.waitFor("error", "too_large"); e["code"] != "too_large" {
		t.Fatalf("oversized = %v", e)
	}
	mumRT.sync()
}

// guestClient is a browser with no account.
func guestClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}, csrf: "1"}
}

func TestTransferGuestByCode(t *testing.T) {
	url, cs := household(t)
	mum := whoami(t, cs["mum"])
	mumRT := openRT(t, "mum", cs["mum"], url, nil)
	mumRT.send("transfer.offer", map[string]any{"guest": true, "files": oneFile, "ref": "g"})
	created := mumRT.waitFor("transfer.created", `"ref":"g"`)
	id, code := created["id"].(string), created["code"].(string)
	if len(code) != 10 {
		t.Fatalf("code = %q", code)
	}

	g := guestClient(t, url)
	// The link serves the app and leaves the code unused.
	resp, err := g.http.Get(url + "/t/" + code)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<script") {
		t.Fatalf("GET /t/CODE = %d", resp.StatusCode)
	}
	var bad struct{ Error struct{ Code string } }
	if s := g.do("POST", "/api/v1/transfer/pair", map[string]string{"code": "ZZZZZ-ZZZZZ"}, &bad); s != 404 || bad.Error.Code != "invalid_code" {
		t.Fatalf("wrong code = %d %+v", s, bad)
	}
	var paired struct {
		Ticket   string
		Transfer struct {
			ID        string
			RelayOnly bool `json:"relay_only"`
			From      struct{ Name string }
		}
	}
	if s := g.do("POST", "/api/v1/transfer/pair", map[string]string{"code": strings.ToLower(code[:5] + "-" + code[5:])}, &paired); s != 200 {
		t.Fatalf("pair = %d", s)
	}
	if paired.Transfer.ID != id || !paired.Transfer.RelayOnly || paired.Transfer.From.Name != "mum" || !strings.HasPrefix(paired.Ticket, "hg_") {
		t.Fatalf("pair answer = %+v", paired)
	}
	var cookie *http.Cookie
	for _, c := range g.http.Jar.Cookies(mustURL(t, url+"/api/v1/ws")) {
		if c.Name == "hearth_guest" {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != paired.Ticket {
		t.Fatal("no hearth_guest cookie after pairing")
	}
	other := guestClient(t, url)
	if s := other.do("POST", "/api/v1/transfer/pair", map[string]string{"code": code}, &bad); s != 404 || bad.Error.Code != "invalid_code" {
		t.Fatalf("reused code = %d %+v, want 404 invalid_code", s, bad)
	}

	// The ticket opens nothing but the realtime connection and TURN.
	general := channelNamed(t, cs["mum"], "general")
	for _, p := range []string{"/api/v1/channels", "/api/v1/me", "/api/v1/users", "/api/v1/transfer/devices", "/api/v1/transfer/history", "/api/v1/channels/" + general.ID + "/messages"} {
		if s := g.do("GET", p, nil, nil); s != 401 {
			t.Errorf("guest (cookie) GET %s = %d, want 401", p, s)
		}
		req, _ := http.NewRequest("GET", url+p, nil)
		req.Header.Set("Authorization", "Bearer "+paired.Ticket)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("guest (bearer) GET %s = %d, want 401", p, resp.StatusCode)
		}
	}
	if s := g.do("POST", "/api/v1/channels/"+general.ID+"/messages", map[string]string{"text": "hi"}, nil); s != 401 {
		t.Errorf("guest posts = %d, want 401", s)
	}
	var creds struct {
		URLs     []string
		Username string
		TTL      int
	}
	req, _ := http.NewRequest("GET", url+"/api/v1/turn/credentials", nil)
	req.Header.Set("Authorization", "Bearer "+paired.Ticket)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&creds)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(creds.Username, ":guest:"+id) || creds.TTL <= 0 || creds.TTL > 3600 || len(creds.URLs) == 0 {
		t.Fatalf("guest TURN credentials = %d %+v", resp.StatusCode, creds)
	}

	guestRT := openRT(t, "guest", g, url, nil)
	// Presence, chat and typing stay among members.
	dadRT := openRT(t, "dad", cs["dad"], url, nil)
	mumRT.waitFor("presence", "")
	post(t, cs["mum"], general.ID, "dinner at 7", "k1")
	dadRT.waitFor("message.new", "dinner at 7")
	mumRT.send("typing", map[string]any{"channel": general.ID})
	guestRT.send("typing", map[string]any{"channel": general.ID, "ref": "t"})
	guestRT.send("presence", map[string]any{"state": "idle"})
	guestRT.waitFor("error", "")
	var dir struct {
		Users []struct{ ID, Presence string }
	}
	cs["mum"].do("GET", "/api/v1/users", nil, &dir)
	for _, u := range dir.Users {
		if strings.HasPrefix(u.ID, "guest:") {
			t.Fatalf("guest listed among users: %+v", dir)
		}
	}
	var devs struct{ Devices []struct{ UserID string } }
	cs["mum"].do("GET", "/api/v1/transfer/devices", nil, &devs)
	for _, d := range devs.Devices {
		if strings.HasPrefix(d.UserID, "guest:") {
			t.Fatalf("guest listed among devices: %+v", devs)
		}
	}

	// The guest takes the transfer and signals with mum, relay only.
	guestRT.send("transfer.accept", map[string]any{"id": id})
	acc := mumRT.waitFor("transfer.accepted", id)
	if p := acc["peer"].(map[string]any); p["user_id"] != "guest:"+id || p["name"] != "guest" {
		t.Fatalf("accepted by %v", p)
	}
	mumRT.send("transfer.signal", map[string]any{"id": id, "sdp": map[string]any{"type": "offer", "sdp": "v=0\r\ns=to-guest\r\na=candidate:1 1 udp 2122260223 192.168.1.20 5000 typ host\r\na=candidate:2 1 udp 41885439 127.0.0.1 49170 typ relay raddr 0.0.0.0 rport 0\r\n"}})
	sig := guestRT.waitFor("transfer.signal", "to-guest")
	sdp := sig["sdp"].(map[string]any)["sdp"].(string)
	if strings.Contains(sdp, "192.168.1.20") || !strings.Contains(sdp, "typ relay") {
		t.Fatalf("guest got SDP %q, want only the relay candidate", sdp)
	}
	if sig["from"].(map[string]any)["user_id"] != mum.User.ID {
		t.Fatalf("signal from = %v", sig["from"])
	}
	guestRT.send("transfer.signal", map[string]any{"id": id, "sdp": map[string]any{"type": "answer", "sdp": "v=0\r\ns=from-guest\r\n"}})
	mumRT.waitFor("transfer.signal", "from-guest")
	// Not another transfer.
	guestRT.send("transfer.offer", map[string]any{"to_user": mum.User.ID, "files": oneFile, "ref": "go"})
	if e := guestRT.waitFor("error", `"ref":"go"`); e["code"] != "not_party" {
		t.Fatalf("guest offer = %v", e)
	}

	guestRT.sync()
	mumRT.sync()
	mumRT.mu.Lock()
	for _, ev := range mumRT.evs {
		if ev.Type == "presence" && strings.Contains(string(ev.Data), "guest:") {
			t.Errorf("members were told of the guest's presence: %s", ev.Data)
		}
	}
	mumRT.mu.Unlock()
	got := guestRT.types("")
	for _, typ := range got {
		switch typ {
		case "hello", "pong", "error", "transfer.signal":
		default:
			t.Errorf("guest received a %s event", typ)
		}
	}
	mumRT.send("transfer.cancel", map[string]any{"id": id, "reason": "done testing"})
	guestRT.waitFor("transfer.cancelled", "done testing")
	// The transfer is over: so is the ticket.
	if s := g.do("GET", "/api/v1/turn/credentials", nil, nil); s != 401 {
		t.Fatalf("TURN credentials after the transfer ended = %d, want 401", s)
	}
	select {
	case <-guestRT.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the guest's connection stayed open after its transfer ended")
	}
}

func mustURL(t *testing.T, s string) *neturl.URL {
	u, err := neturl.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
