package peer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
)

// Signaling is a party's realtime connection as far as transfers go: it
// stamps each message with ts and nonce (PROTOCOL.md section 2) and sorts
// the server's events by transfer.
type Signaling struct {
	conn *hub.ClientConn

	mu     sync.Mutex
	subs   map[string]chan Event
	other  chan hub.Envelope
	err    error
	done   chan struct{}
	closed bool
}

// ServerError is an error event from the server.
type ServerError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref"`
}

func (e *ServerError) Error() string { return fmt.Sprintf("%s (%s)", e.Message, e.Code) }

// NewSignaling starts reading conn's events.
func NewSignaling(conn *hub.ClientConn) *Signaling {
	s := &Signaling{conn: conn, subs: map[string]chan Event{}, other: make(chan hub.Envelope, 64), done: make(chan struct{})}
	go s.read()
	return s
}

func (s *Signaling) read() {
	defer close(s.done)
	for {
		env, err := s.conn.Receive(context.Background())
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		var d struct {
			ID string `json:"id"`
		}
		json.Unmarshal(env.Data, &d)
		s.mu.Lock()
		sub := s.subs[d.ID]
		s.mu.Unlock()
		if sub != nil && d.ID != "" {
			select {
			case sub <- Event{Type: env.Type, Data: env.Data}:
			case <-time.After(30 * time.Second): // a stuck consumer must not stall the rest
			}
			continue
		}
		select {
		case s.other <- env:
		default: // nobody listens: presence and chat events are dropped
		}
	}
}

// Subscribe returns the events about transfer id from now on.
func (s *Signaling) Subscribe(id string) <-chan Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan Event, 256)
	s.subs[id] = ch
	return ch
}

// Next returns the next event that is not about a subscribed transfer,
// skipping those for which want is false (nil: every event).
func (s *Signaling) Next(ctx context.Context, want func(hub.Envelope) bool) (hub.Envelope, error) {
	for {
		select {
		case env := <-s.other:
			if want == nil || want(env) {
				return env, nil
			}
		case <-s.done:
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			return hub.Envelope{}, fmt.Errorf("realtime connection closed: %w", err)
		case <-ctx.Done():
			return hub.Envelope{}, ctx.Err()
		}
	}
}

// Send sends a transfer.* message; data gets ts and nonce.
func (s *Signaling) Send(ctx context.Context, typ string, data map[string]any) error {
	msg := make(map[string]any, len(data)+2)
	for k, v := range data {
		msg[k] = v
	}
	msg["ts"] = time.Now().UnixMilli()
	msg["nonce"] = Nonce()
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %s: %w", typ, err)
	}
	return s.conn.Send(ctx, hub.Envelope{Type: typ, Data: b})
}

// Nonce returns a fresh 32-character nonce.
func Nonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Close closes the connection.
func (s *Signaling) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.conn.Close()
	<-s.done
	return err
}

// AsServerError reads an error event.
func AsServerError(env hub.Envelope) error {
	if env.Type != "error" {
		return nil
	}
	var e ServerError
	if err := json.Unmarshal(env.Data, &e); err != nil || e.Code == "" {
		return errors.New("the server refused the message")
	}
	return &e
}
