package voicetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/hearth-home/hearth/appliance/hub"
)

// Hub stands in for the realtime hub in one process: Publish delivers each
// event as JSON to the clients in its audience (a session's, or every
// client for a channel event), and clients' messages go to Handle.
type Hub struct {
	// Handle runs a client message (the service's Handle); set it before
	// clients send.
	Handle func(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error

	mu      sync.Mutex
	clients map[string]*Client // by session ID
	events  []hub.Event
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{clients: map[string]*Client{}} }

// Publish delivers ev (the service's Publish hook).
func (h *Hub) Publish(ev hub.Event) {
	data, err := json.Marshal(ev.Data)
	if err != nil {
		panic("voicetest: event data does not marshal: " + err.Error())
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	var to []*Client
	if len(ev.Sessions) > 0 {
		for _, s := range ev.Sessions {
			if c := h.clients[s]; c != nil {
				to = append(to, c)
			}
		}
	} else {
		for _, c := range h.clients {
			to = append(to, c)
		}
	}
	h.mu.Unlock()
	for _, c := range to {
		c.Deliver(ev.Type, data)
	}
}

// Events returns the events published so far.
func (h *Hub) Events() []hub.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hub.Event(nil), h.events...)
}

// Connect makes a client for who (by session ID) whose messages go to
// h.Handle.
func (h *Hub) Connect(who hub.Client, cfg Config) (*Client, error) {
	if cfg.Send == nil {
		cfg.Send = func(ctx context.Context, typ string, data json.RawMessage) error {
			if h.Handle == nil {
				return errors.New("voicetest: hub has no Handle")
			}
			return h.Handle(ctx, who, typ, data)
		}
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.clients[who.SessionID] = c
	h.mu.Unlock()
	return c, nil
}

// Disconnect forgets a session's client (its events are dropped).
func (h *Hub) Disconnect(sessionID string) {
	h.mu.Lock()
	delete(h.clients, sessionID)
	h.mu.Unlock()
}
