package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Defaults.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultSendQueue    = 256
	MaxMessageBytes     = 64 << 10
	// rate limit for client messages: sustained per second and burst
	clientRate  = 20
	clientBurst = 60
)

// Config configures a Hub.
type Config struct {
	Logger       *slog.Logger  // nil: discard
	PingInterval time.Duration // zero: DefaultPingInterval
	SendQueue    int           // zero: DefaultSendQueue
	Version      string        // sent in the hello event
}

// Envelope is every message's outer shape.
type Envelope struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Client identifies who is on a connection.
type Client struct {
	UserID    string
	SessionID string
	Name      string
}

// Hub tracks the open connections. It is safe for concurrent use.
type Hub struct {
	log   *slog.Logger
	ping  time.Duration
	queue int
	ver   string

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New builds a Hub.
func New(cfg Config) *Hub {
	h := &Hub{log: cfg.Logger, ping: cfg.PingInterval, queue: cfg.SendQueue, ver: cfg.Version, conns: map[*conn]struct{}{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.ping == 0 {
		h.ping = DefaultPingInterval
	}
	if h.queue == 0 {
		h.queue = DefaultSendQueue
	}
	return h
}

type conn struct {
	ws     *websocket.Conn
	client Client
	send   chan []byte
	cancel context.CancelCauseFunc
}

// errGoingAway and friends say why a connection was closed.
var (
	errGoingAway = errors.New("server shutting down")
	errRevoked   = errors.New("session ended")
	errSlow      = errors.New("client too slow")
	errFlood     = errors.New("too many messages")
)

// ErrClosed is returned by Serve once the hub has shut down.
var ErrClosed = errors.New("hub closed")

// Serve upgrades the request to a WebSocket for client and runs it until
// either side closes it. The Origin must match the Host.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, client Client) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	ws, err := websocket.Accept(w, r, nil) // nil options: Origin must equal Host
	if err != nil {
		return nil // Accept has written the response
	}
	ws.SetReadLimit(MaxMessageBytes)
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	c := &conn{ws: ws, client: client, send: make(chan []byte, h.queue), cancel: cancel}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, errGoingAway.Error())
		return ErrClosed
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()

	hello, _ := json.Marshal(map[string]any{"user_id": client.UserID, "session_id": client.SessionID, "version": h.ver})
	c.enqueue(h.envelope("hello", hello))

	done := make(chan struct{})
	go func() {
		defer close(done)
		// Reading has its own context: cancelling a Read's context makes the
		// library drop the connection without the close frame sent below.
		h.readLoop(context.WithoutCancel(ctx), c)
	}()
	h.writeLoop(ctx, c)
	cause := context.Cause(ctx)
	code := websocket.StatusNormalClosure
	switch {
	case errors.Is(cause, errGoingAway):
		code = websocket.StatusGoingAway
	case errors.Is(cause, errSlow), errors.Is(cause, errFlood):
		code = websocket.StatusPolicyViolation
	}
	reason := ""
	if cause != nil && !errors.Is(cause, context.Canceled) {
		reason = cause.Error()
	}
	ws.Close(code, reason)
	<-done
	return nil
}

func (h *Hub) envelope(typ string, data json.RawMessage) []byte {
	b, _ := json.Marshal(Envelope{Type: typ, Data: data})
	return b
}

func (c *conn) enqueue(b []byte) {
	select {
	case c.send <- b:
	default:
		c.cancel(errSlow)
	}
}

func (h *Hub) writeLoop(ctx context.Context, c *conn) {
	t := time.NewTicker(h.ping)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-c.send:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.cancel(fmt.Errorf("write: %w", err))
				return
			}
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, h.ping)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				c.cancel(fmt.Errorf("keepalive: %w", err))
				return
			}
		}
	}
}

func (h *Hub) readLoop(ctx context.Context, c *conn) {
	tokens, last := float64(clientBurst), time.Now()
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			c.cancel(nil)
			return
		}
		now := time.Now()
		tokens = min(clientBurst, tokens+now.Sub(last).Seconds()*clientRate)
		last = now
		if tokens < 1 {
			c.cancel(errFlood)
			return
		}
		tokens--
		if typ != websocket.MessageText {
			c.enqueue(h.errorEvent("bad_message", "messages are JSON text"))
			continue
		}
		var env Envelope
		if err := json.Unmarshal(b, &env); err != nil || env.Type == "" {
			c.enqueue(h.errorEvent("bad_message", "message is not a JSON envelope with a type"))
			continue
		}
		switch env.Type {
		case "ping":
			c.enqueue(h.envelope("pong", nil))
		default:
			c.enqueue(h.errorEvent("unknown_type", "unknown message type "+truncate(env.Type, 40)))
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (h *Hub) errorEvent(code, msg string) []byte {
	d, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	return h.envelope("error", d)
}

// Online returns the number of open connections.
func (h *Hub) Online() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// DisconnectSession closes the connections of a revoked session.
func (h *Hub) DisconnectSession(sessionID string) {
	h.disconnect(func(c Client) bool { return c.SessionID == sessionID })
}

// DisconnectUser closes every connection of a user (disabled, or password
// reset).
func (h *Hub) DisconnectUser(userID string) {
	h.disconnect(func(c Client) bool { return c.UserID == userID })
}

func (h *Hub) disconnect(match func(Client) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		if match(c.client) {
			c.cancel(errRevoked)
		}
	}
}

// Close sends every client a going-away close frame and waits, until ctx
// ends, for the connections to finish. It is safe to call more than once.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	for c := range h.conns {
		c.cancel(errGoingAway)
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close realtime connections: %w", ctx.Err())
	}
}

// DisconnectUserExcept closes a user's connections whose session is not in
// keep (the sessions still alive).
func (h *Hub) DisconnectUserExcept(userID string, keep map[string]bool) {
	h.disconnect(func(c Client) bool { return c.UserID == userID && !keep[c.SessionID] })
}
