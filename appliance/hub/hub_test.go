package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/hub"
)

// log is a stand-in event store: the hub replays from it.
type log struct {
	mu     sync.Mutex
	events []hub.Event
}

func (l *log) add(ev hub.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *log) replay(_ context.Context, _ string, since, upto uint64, emit func(hub.Event) error) error {
	l.mu.Lock()
	evs := append([]hub.Event(nil), l.events...)
	l.mu.Unlock()
	if upto-since > 50 {
		return hub.ErrTooFarBehind
	}
	for _, ev := range evs {
		if ev.ID > since && ev.ID <= upto {
			if err := emit(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

func newHub(t *testing.T, l *log, visible func(u, ch string) bool) (*hub.Hub, string) {
	t.Helper()
	h := hub.New(hub.Config{Replay: l.replay, Visible: visible,
		Handle: func(_ context.Context, c hub.Client, typ string, _ json.RawMessage) error {
			return fmt.Errorf("no handler for %s", typ)
		}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, hub.Client{UserID: r.URL.Query().Get("user"), SessionID: r.URL.Query().Get("user") + "-s"})
	}))
	t.Cleanup(func() { h.Close(context.Background()); srv.Close() })
	return h, srv.URL
}

type msg struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id"`
	Data json.RawMessage `json:"data"`
}

func dial(t *testing.T, url, user string, since uint64) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := strings.Replace(url, "http", "ws", 1) + "/?user=" + user
	if since > 0 {
		u += fmt.Sprintf("&since=%d", since)
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {url}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	if m := read(t, ws); m.Type != "hello" {
		t.Fatalf("first message %q, want hello", m.Type)
	}
	return ws
}

func read(t *testing.T, ws *websocket.Conn) msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m msg
		json.Unmarshal(b, &m)
		if m.Type == "presence" {
			continue
		}
		return m
	}
}

func TestPublishInOrderToAudience(t *testing.T) {
	l := &log{}
	h, url := newHub(t, l, func(u, ch string) bool { return ch == "public" || u == "mum" })
	mum := dial(t, url, "mum", 0)
	kid := dial(t, url, "kid", 0)
	// Published out of order: delivered in order.
	for _, id := range []uint64{2, 1, 4, 3} {
		ch := "public"
		if id == 3 {
			ch = "parents"
		}
		ev := hub.Event{ID: id, Type: "message.new", Channel: ch, Data: map[string]uint64{"n": id}}
		l.add(ev)
		h.Publish(ev)
	}
	for _, want := range []uint64{1, 2, 3, 4} {
		if m := read(t, mum); m.ID != want {
			t.Fatalf("mum got event %d, want %d", m.ID, want)
		}
	}
	for _, want := range []uint64{1, 2, 4} { // 3 is in a channel the kid cannot read
		if m := read(t, kid); m.ID != want {
			t.Fatalf("kid got event %d, want %d", m.ID, want)
		}
	}
	h.Publish(hub.Event{Type: "note", Users: []string{"kid"}})
	if m := read(t, kid); m.Type != "note" {
		t.Fatalf("kid got %q, want the user-addressed note", m.Type)
	}
	h.Publish(hub.Event{Type: "signal", Sessions: []string{"mum-s"}})
	h.Publish(hub.Event{Type: "after", Users: []string{"mum", "kid"}})
	if m := read(t, mum); m.Type != "signal" {
		t.Fatalf("mum got %q, want the session-addressed signal", m.Type)
	}
	if m := read(t, kid); m.Type != "after" {
		t.Fatalf("kid got %q, want only the later event", m.Type)
	}
}

func TestResumeExactlyOnce(t *testing.T) {
	l := &log{}
	h, url := newHub(t, l, nil)
	for id := uint64(1); id <= 5; id++ {
		ev := hub.Event{ID: id, Type: "message.new"}
		l.add(ev)
		h.Publish(ev)
	}
	ws := dial(t, url, "mum", 2) // saw 1 and 2 before a blip
	go func() {
		for id := uint64(6); id <= 8; id++ {
			ev := hub.Event{ID: id, Type: "message.new"}
			l.add(ev)
			h.Publish(ev)
		}
	}()
	for want := uint64(3); want <= 8; want++ {
		if m := read(t, ws); m.ID != want {
			t.Fatalf("after resume got %d, want %d", m.ID, want)
		}
	}
	// Far behind: told to reload.
	for id := uint64(9); id <= 100; id++ {
		ev := hub.Event{ID: id, Type: "message.new"}
		l.add(ev)
		h.Publish(ev)
	}
	if m := read(t, dial(t, url, "kid", 1)); m.Type != "resync" {
		t.Fatalf("far-behind client got %q, want resync", m.Type)
	}
}

func TestBadMessagesAnsweredNotFatal(t *testing.T) {
	l := &log{}
	_, url := newHub(t, l, nil)
	ws := dial(t, url, "mum", 0)
	ctx := context.Background()
	for _, in := range []string{`not json`, `{"type":""}`, `{"type":"frobnicate"}`, `{"type":"presence","data":{"state":"asleep"}}`} {
		ws.Write(ctx, websocket.MessageText, []byte(in))
		if m := read(t, ws); m.Type != "error" {
			t.Fatalf("%s answered with %q, want error", in, m.Type)
		}
	}
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`))
	if m := read(t, ws); m.Type != "pong" {
		t.Fatalf("ping answered with %q", m.Type)
	}
}

func TestFloodClosesConnection(t *testing.T) {
	l := &log{}
	_, url := newHub(t, l, nil)
	ws := dial(t, url, "mum", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		for range 500 {
			if ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`)) != nil {
				return
			}
		}
	}()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("flood ended with %v, want policy violation", err)
			}
			return
		}
	}
}

func TestPresence(t *testing.T) {
	l := &log{}
	h, url := newHub(t, l, nil)
	dial(t, url, "mum", 0)
	if h.Presence()["mum"] != "online" {
		t.Fatalf("Presence() = %v", h.Presence())
	}
}

// FuzzDecodeEnvelope: any client message decodes to an envelope with a
// type, or an error, never a panic.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{`{"type":"ping"}`, `{"type":"typing","data":{"channel":"c1"}}`, `{"type":""}`, `[]`, `null`, `{"type":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := hub.DecodeEnvelope(b)
		if err == nil && (env.Type == "" || len(env.Type) > 64) {
			t.Fatalf("accepted envelope with type %q", env.Type)
		}
	})
}

// A client that stops reading is cut off once its queue is full; another
// client gets every event, whole and in order, meanwhile (large events fill
// the socket's buffers, so writes are partial and queued).
func TestSlowClientCutOffOthersUnaffected(t *testing.T) {
	l := &log{}
	h, url := newHub(t, l, nil)
	slow := dial(t, url, "slow", 0)
	fast := dial(t, url, "fast", 0)
	fast.SetReadLimit(1 << 20)
	slow.SetReadLimit(1 << 20)
	big := strings.Repeat("x", 48<<10)
	const n = 400 // more than the queue of 256, and megabytes in all
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got atomic.Uint64
	done := make(chan error, 1)
	go func() {
		for want := uint64(1); want <= n; {
			_, b, err := fast.Read(ctx)
			if err != nil {
				done <- fmt.Errorf("fast client, waiting for event %d: %w", want, err)
				return
			}
			var m struct {
				Type string
				ID   uint64
				Data struct{ N uint64 }
			}
			if err := json.Unmarshal(b, &m); err != nil || m.Type == "presence" {
				continue
			}
			if m.ID != want || m.Data.N != want {
				done <- fmt.Errorf("fast client got event %d (n %d), want %d", m.ID, m.Data.N, want)
				return
			}
			got.Store(want)
			want++
		}
		done <- nil
	}()
	for id := uint64(1); id <= n; id++ {
		for id > got.Load()+100 { // the fast client keeps up
			select {
			case err := <-done:
				t.Fatalf("before event %d was published: %v", id, err)
			case <-time.After(time.Millisecond):
			}
		}
		h.Publish(hub.Event{ID: id, Type: "message.new", Data: map[string]any{"n": id, "text": big}})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The slow client is cut off: it finds its connection closed for
	// being too slow, or (when the close frame is stuck behind what it did
	// not read) dropped; the hub has let it go.
	for {
		_, _, err := slow.Read(ctx)
		if err == nil {
			continue
		}
		if s := websocket.CloseStatus(err); s != -1 && s != websocket.StatusPolicyViolation {
			t.Fatalf("slow client's connection closed with %v, want a policy-violation close", err)
		}
		break
	}
	for h.Online() != 1 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.Online(); n != 1 {
		t.Fatalf("Online() = %d with the slow client cut off, want 1", n)
	}
}
