package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
)

// TestClientConn talks to a hub with the client side: the hello, a ping
// answered with a pong, an event published to the client's session, and a
// refused Authorization header.
func TestClientConn(t *testing.T) {
	h := hub.New(hub.Config{Version: "test"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		h.Serve(w, r, hub.Client{UserID: "u1", SessionID: "s1", Name: "mum"})
	}))
	defer srv.Close()
	defer h.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := hub.Dial(ctx, srv.URL+"/api/v1/ws", http.Header{"Authorization": {"Bearer wrong"}}, nil); err == nil {
		t.Fatal("Dial with a wrong token succeeded")
	}
	c, err := hub.Dial(ctx, srv.URL+"/api/v1/ws", http.Header{"Authorization": {"Bearer secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env, err := c.Receive(ctx)
	if err != nil || env.Type != "hello" {
		t.Fatalf("first message = %+v, %v; want hello", env, err)
	}
	if err := c.Send(ctx, hub.Envelope{Type: "ping"}); err != nil {
		t.Fatal(err)
	}
	for { // the client's own presence may come first
		env, err := c.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if env.Type == "pong" {
			break
		}
		if env.Type != "presence" {
			t.Fatalf("answer to ping = %+v", env)
		}
	}
	h.Publish(hub.Event{Type: "transfer.signal", Sessions: []string{"s1"}, Data: map[string]string{"id": "t1"}})
	env, err = c.Receive(ctx)
	var d struct{ ID string }
	if err != nil || env.Type != "transfer.signal" || json.Unmarshal(env.Data, &d) != nil || d.ID != "t1" {
		t.Fatalf("event = %+v, %v", env, err)
	}
}
