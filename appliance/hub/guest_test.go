package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/hub"
)

// A guest connection (a file transfer's guest) is no one's presence, gets
// no replay, and receives only events sent to its own session.
func TestGuestSeesOnlyItsSession(t *testing.T) {
	var replays atomic.Int32
	h := hub.New(hub.Config{
		LastID: func() uint64 { return 5 },
		Replay: func(context.Context, string, uint64, uint64, func(hub.Event) error) error {
			replays.Add(1)
			return nil
		},
		Handle: func(context.Context, hub.Client, string, json.RawMessage) error { return nil },
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		h.Serve(w, r, hub.Client{UserID: q.Get("user"), SessionID: q.Get("session"), Guest: q.Get("guest") == "1"})
	}))
	t.Cleanup(func() { h.Close(context.Background()); srv.Close() })
	open := func(query string) *websocket.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/?"+query, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {srv.URL}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		if m := read(t, ws); m.Type != "hello" {
			t.Fatalf("first message %q, want hello", m.Type)
		}
		return ws
	}
	guest := open("user=guest:t1&session=g1&guest=1&since=1")
	if replays.Load() != 0 {
		t.Fatal("a guest was replayed stored events")
	}
	if p := h.Presence(); len(p) != 0 {
		t.Fatalf("Presence() = %v with only a guest online", p)
	}
	member := open("user=mum&session=m1")
	if p := h.Presence(); len(p) != 1 || p["mum"] == "" {
		t.Fatalf("Presence() = %v, want mum only", p)
	}
	var sawGuest bool
	for _, c := range h.Clients() {
		sawGuest = sawGuest || (c.Guest && c.SessionID == "g1")
	}
	if !sawGuest {
		t.Fatalf("Clients() = %v, want the guest among them", h.Clients())
	}
	// Everything but the session-addressed event passes the guest by.
	h.Publish(hub.Event{Type: "broadcast", Data: "all"})
	h.Publish(hub.Event{Type: "to-users", Users: []string{"mum", "guest:t1"}, Data: "users"})
	h.Publish(hub.Event{ID: 6, Type: "message.new", Channel: "general", Data: "chat"})
	h.Publish(hub.Event{Type: "transfer.signal", Sessions: []string{"g1"}, Data: "for the guest"})
	if m := readAny(t, guest); m.Type != "transfer.signal" {
		t.Fatalf("guest got %q first, want only its transfer.signal", m.Type)
	}
	// The guest may not set presence.
	guest.Write(context.Background(), websocket.MessageText, []byte(`{"type":"presence","data":{"state":"idle"}}`))
	if m := readAny(t, guest); m.Type != "error" {
		t.Fatalf("guest presence answered %q, want error", m.Type)
	}
	for _, want := range []string{"presence", "broadcast", "to-users", "message.new"} {
		if m := readAny(t, member); m.Type != want {
			t.Fatalf("member got %q, want %q", m.Type, want)
		}
	}
	guest.Close(websocket.StatusNormalClosure, "")
	member.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping"}`))
	if m := readAny(t, member); m.Type != "pong" {
		t.Fatalf("member got %q after the guest left, want no presence change, just pong", m.Type)
	}
}

// readAny reads the next message, presence included.
func readAny(t *testing.T, ws *websocket.Conn) msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m msg
	json.Unmarshal(b, &m)
	return m
}
