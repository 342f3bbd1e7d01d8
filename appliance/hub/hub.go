package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Defaults.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultSendQueue    = 256
	MaxMessageBytes     = 64 << 10
	// MaxReplay is the most stored events a reconnecting client is sent;
	// further behind, it is told to reload (a "resync" event).
	MaxReplay = 10000
	// rate limit for client messages: sustained per second and burst
	// (above file transfer's own 50 a second, burst 100, so that its
	// too_fast refusals come before the connection is cut)
	clientRate  = 60
	clientBurst = 120
)

// Config configures a Hub. Every hook may be nil.
type Config struct {
	Logger       *slog.Logger  // nil: discard
	PingInterval time.Duration // zero: DefaultPingInterval
	SendQueue    int           // zero: DefaultSendQueue
	Version      string        // sent in the hello event

	// LastID returns the newest stored event ID when the hub starts; events
	// are published in ID order from the next one. nil means 0.
	LastID func() uint64
	// Visible reports whether a user may see a channel event; nil shows
	// channel events to everyone.
	Visible func(userID, channel string) bool
	// Replay sends a reconnecting client the stored events it may see with
	// since < ID <= upto, in order, through emit. It returns ErrTooFarBehind
	// when it cannot (the client then reloads).
	Replay func(ctx context.Context, userID string, since, upto uint64, emit func(Event) error) error
	// Handle runs a client message other than ping; an error is sent back
	// to that client as an error event.
	Handle func(ctx context.Context, c Client, typ string, data json.RawMessage) error
	// Presence is called when a user's presence changes (first connection,
	// last disconnection, idle/active); nil does nothing.
	Presence func(userID, state string)
	// ErrorCode names the error a Handle call returned, for the client's
	// error event; nil or "" means "refused".
	ErrorCode func(error) string
	// Disconnected is called after a connection ends, however it ended
	// (so per-connection state such as a voice call can be cleaned up);
	// nil does nothing.
	Disconnected func(Client)
}

// ErrTooFarBehind tells the hub a client must reload instead of replaying.
var ErrTooFarBehind = errors.New("too far behind to replay")

// Envelope is every message's outer shape.
type Envelope struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Event is something to deliver to clients. Events with an ID are stored
// by their producer and delivered in ID order; ID 0 is ephemeral (typing,
// presence). The audience is the connections of the Sessions listed, or
// the Users listed, or the readers of Channel, or everyone when all are
// empty.
type Event struct {
	ID       uint64
	Type     string
	Channel  string
	Users    []string
	Sessions []string // only for ephemeral events (signaling to one device)
	Data     any
}

// Client identifies who is on a connection.
type Client struct {
	UserID    string
	SessionID string
	Name      string
	Addr      netip.Addr // the client's IP address as the server sees it
	// Guest marks a connection without an account (a file transfer's
	// guest): it is no one's presence, gets no replay, and receives only
	// events addressed to its session.
	Guest bool
}

// Hub tracks the open connections. It is safe for concurrent use.
type Hub struct {
	cfg   Config
	log   *slog.Logger
	ping  time.Duration
	queue int

	mu     sync.RWMutex
	conns  map[*conn]struct{}
	users  map[string]int    // user → open connections
	states map[string]string // user → online or idle
	closed bool
	wg     sync.WaitGroup

	seqMu   sync.Mutex
	next    uint64 // next event ID to deliver
	pending map[uint64]Event
}

// New builds a Hub.
func New(cfg Config) *Hub {
	h := &Hub{cfg: cfg, log: cfg.Logger, ping: cfg.PingInterval, queue: cfg.SendQueue,
		conns: map[*conn]struct{}{}, users: map[string]int{}, states: map[string]string{}, pending: map[uint64]Event{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.ping == 0 {
		h.ping = DefaultPingInterval
	}
	if h.queue == 0 {
		h.queue = DefaultSendQueue
	}
	h.next = 1
	if cfg.LastID != nil {
		h.next = cfg.LastID() + 1
	}
	return h
}

// Reasons a connection is closed.
var (
	errGoingAway = errors.New("server shutting down")
	errRevoked   = errors.New("session ended")
	errSlow      = errors.New("client too slow")
	errFlood     = errors.New("too many messages")
)

// ErrClosed is returned by Serve once the hub has shut down.
var ErrClosed = errors.New("hub closed")

// Serve upgrades the request to a WebSocket for client and returns; the
// connection runs in a goroutine of its own until either side closes it
// (Close waits for it). Returning frees the HTTP server's buffers and the
// request's stack, which an idle connection would otherwise keep. The
// Origin must match the Host. A client that reconnects passes ?since=ID
// (the last event ID it saw) and first receives the stored events it
// missed, then live ones, each exactly once.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, client Client) error {
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, `{"error":{"code":"invalid_request","message":"since must be an event ID."}}`, http.StatusBadRequest)
			return nil
		}
		since = n
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.wg.Add(1)
	h.mu.Unlock()
	running := false
	defer func() {
		if !running {
			h.wg.Done()
		}
	}()

	hj := &hijacker{ResponseWriter: w}
	ws, err := websocket.Accept(hj, r, nil) // nil options: Origin must equal Host
	if err != nil {
		return nil // Accept has written the response
	}
	// Messages up to twice the limit are read, so a handler can refuse an
	// oversized one with an error event rather than a dropped connection.
	ws.SetReadLimit(2 * MaxMessageBytes)
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	// writing: queued events wait until hello and the replay are written.
	c := &conn{h: h, ws: ws, bc: hj.bc, client: client, ctx: ctx, cancel: cancel, writing: true}

	upto, ok := h.register(c)
	if !ok {
		ws.Close(websocket.StatusGoingAway, errGoingAway.Error())
		return ErrClosed
	}
	running = true
	go h.run(ctx, c, since, upto)
	return nil
}

// run writes hello and the missed events, then reads the client's
// messages until the connection ends.
func (h *Hub) run(ctx context.Context, c *conn, since, upto uint64) {
	defer h.wg.Done()
	defer h.unregister(c)
	ws, client := c.ws, c.client

	// The connection is closed, with a code saying why, once its context
	// ends: by the client leaving (the read below fails), or by the hub.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
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
	})
	defer stop()

	hello := map[string]any{"user_id": client.UserID, "session_id": client.SessionID, "version": h.cfg.Version, "last_id": upto}
	if err := c.writeBatch([][]byte{frame(envelope("hello", 0, hello))}); err != nil {
		c.cancel(err)
	} else if since > 0 && since < upto && !client.Guest {
		h.replay(ctx, c, since, upto)
	}
	c.release()
	c.keepalive(h.ping)

	// Reading has its own context: cancelling a Read's context makes the
	// library drop the connection without the close frame sent above.
	h.readLoop(context.WithoutCancel(ctx), c)
	c.end()
	c.cancel(nil)
	<-closed
}

// register adds c to the live audience and returns the last event ID
// delivered before it joined: events after it reach c through its queue.
func (h *Hub) register(c *conn) (uint64, bool) {
	h.seqMu.Lock()
	defer h.seqMu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return 0, false
	}
	h.conns[c] = struct{}{}
	if c.client.Guest {
		h.mu.Unlock()
		return h.next - 1, true
	}
	h.users[c.client.UserID]++
	first := h.users[c.client.UserID] == 1
	if first {
		h.states[c.client.UserID] = "online"
	}
	h.mu.Unlock()
	if first {
		h.presenceChanged(c.client.UserID, "online")
	}
	return h.next - 1, true
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	if c.client.Guest {
		h.mu.Unlock()
		if h.cfg.Disconnected != nil {
			h.cfg.Disconnected(c.client)
		}
		return
	}
	h.users[c.client.UserID]--
	last := h.users[c.client.UserID] <= 0
	if last {
		delete(h.users, c.client.UserID)
		delete(h.states, c.client.UserID)
	}
	h.mu.Unlock()
	if last {
		h.presenceChanged(c.client.UserID, "offline")
	}
	if h.cfg.Disconnected != nil {
		h.cfg.Disconnected(c.client)
	}
}

func (h *Hub) presenceChanged(userID, state string) {
	h.deliver(Event{Type: "presence", Data: map[string]string{"user_id": userID, "state": state}})
	if h.cfg.Presence != nil {
		h.cfg.Presence(userID, state)
	}
}

// Presence returns the users with open connections and their state
// (online or idle).
func (h *Hub) Presence() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]string, len(h.states))
	for u, s := range h.states {
		out[u] = s
	}
	return out
}

// replay writes the stored events c missed, in batches.
func (h *Hub) replay(ctx context.Context, c *conn, since, upto uint64) {
	if h.cfg.Replay == nil {
		return
	}
	var batch [][]byte
	flush := func() error {
		err := c.writeBatch(batch)
		batch = batch[:0]
		return err
	}
	err := h.cfg.Replay(ctx, c.client.UserID, since, upto, func(ev Event) error {
		batch = append(batch, frame(envelope(ev.Type, ev.ID, ev.Data)))
		if len(batch) < 64 {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	switch {
	case errors.Is(err, ErrTooFarBehind):
		batch = append(batch[:0], frame(envelope("resync", 0, map[string]uint64{"last_id": upto})))
		if err := flush(); err != nil {
			c.cancel(err)
		}
	case err != nil:
		h.log.Warn("replay events", "user", c.client.Name, "since", since, "err", err)
		c.cancel(fmt.Errorf("replay: %w", err))
	}
}

func envelope(typ string, id uint64, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		raw = nil
	}
	if data == nil {
		raw = nil
	}
	b, _ := json.Marshal(Envelope{Type: typ, ID: id, Data: raw})
	return b
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
			c.enqueue(errorEvent("bad_message", "messages are JSON text"))
			continue
		}
		env, err := DecodeEnvelope(b)
		if err != nil {
			c.enqueue(errorEvent("bad_message", err.Error()))
			continue
		}
		h.handle(ctx, c, env)
	}
}

// DecodeEnvelope parses a client message.
func DecodeEnvelope(b []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return env, errors.New("message is not a JSON envelope")
	}
	if env.Type == "" || len(env.Type) > 64 {
		return env, errors.New("message has no type")
	}
	return env, nil
}

func (h *Hub) handle(ctx context.Context, c *conn, env Envelope) {
	switch env.Type {
	case "ping":
		c.enqueue(envelope("pong", 0, nil))
	case "presence":
		if c.client.Guest {
			c.enqueue(errorEvent("refused", "guests have no presence"))
			return
		}
		var p struct {
			State string `json:"state"`
		}
		if json.Unmarshal(env.Data, &p) != nil || (p.State != "online" && p.State != "idle") {
			c.enqueue(errorEvent("bad_message", "presence state is online or idle"))
			return
		}
		h.mu.Lock()
		changed := h.states[c.client.UserID] != p.State
		h.states[c.client.UserID] = p.State
		h.mu.Unlock()
		if changed {
			h.presenceChanged(c.client.UserID, p.State)
		}
	default:
		if h.cfg.Handle == nil {
			c.enqueue(errorEvent("unknown_type", "unknown message type "+env.Type))
			return
		}
		if err := h.cfg.Handle(ctx, c.client, env.Type, env.Data); err != nil {
			code := "refused"
			if h.cfg.ErrorCode != nil {
				if c := h.cfg.ErrorCode(err); c != "" {
					code = c
				}
			}
			c.enqueue(errorEventRef(code, err))
		}
	}
}

func errorEvent(code, msg string) []byte {
	return envelope("error", 0, map[string]string{"code": code, "message": msg})
}

// errorEventRef is the error event for a Handle error; an error with a
// Ref() string method (the client's request reference) has it echoed as
// "ref".
func errorEventRef(code string, err error) []byte {
	data := map[string]string{"code": code, "message": err.Error()}
	var r interface{ Ref() string }
	if errors.As(err, &r) && r.Ref() != "" {
		data["ref"] = r.Ref()
	}
	return envelope("error", 0, data)
}

// Publish delivers an event to every connection in its audience. Stored
// events (ID > 0) are delivered strictly in ID order: one published ahead
// of its predecessors waits for them. Every stored ID must be published.
func (h *Hub) Publish(ev Event) {
	if ev.ID == 0 {
		h.deliver(ev)
		return
	}
	h.seqMu.Lock()
	defer h.seqMu.Unlock()
	if ev.ID < h.next {
		return // already delivered (or from before this hub started)
	}
	h.pending[ev.ID] = ev
	for {
		e, ok := h.pending[h.next]
		if !ok {
			return
		}
		delete(h.pending, h.next)
		h.next++
		h.deliver(e)
	}
}

func (h *Hub) deliver(ev Event) {
	f := frame(envelope(ev.Type, ev.ID, ev.Data)) // framed once for everyone
	// A channel event asks Visible once per user, not per connection.
	byUser := ev.Channel != "" && len(ev.Users) == 0 && len(ev.Sessions) == 0 && h.cfg.Visible != nil
	var visible map[string]bool
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.conns {
		in := false
		if byUser && !c.client.Guest {
			v, known := visible[c.client.UserID]
			if !known {
				if visible == nil {
					visible = map[string]bool{}
				}
				v = h.cfg.Visible(c.client.UserID, ev.Channel)
				visible[c.client.UserID] = v
			}
			in = v
		} else {
			in = h.inAudience(c.client, &ev)
		}
		if in {
			c.enqueueFrame(f)
		}
	}
}

func (h *Hub) inAudience(c Client, ev *Event) bool {
	user := c.UserID
	if len(ev.Sessions) > 0 {
		for _, s := range ev.Sessions {
			if s == c.SessionID {
				return true
			}
		}
		return false
	}
	if c.Guest {
		return false // guests get only what is sent to their session
	}
	if len(ev.Users) > 0 {
		for _, u := range ev.Users {
			if u == user {
				return true
			}
		}
		return false
	}
	if ev.Channel != "" && h.cfg.Visible != nil {
		return h.cfg.Visible(user, ev.Channel)
	}
	return true
}

// HasAddr reports whether a connected client has the IP address a (the
// relay lets peers reach only addresses of live sessions).
func (h *Hub) HasAddr(a netip.Addr) bool {
	a = a.Unmap()
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.conns {
		if c.client.Addr == a {
			return true
		}
	}
	return false
}

// Clients returns who is on each open connection (a session with two
// connections appears twice), guests included.
func (h *Hub) Clients() []Client {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Client, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c.client)
	}
	return out
}

// Online returns the number of open connections.
func (h *Hub) Online() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
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

// DisconnectUserExcept closes a user's connections whose session is not in
// keep (the sessions still alive).
func (h *Hub) DisconnectUserExcept(userID string, keep map[string]bool) {
	h.disconnect(func(c Client) bool { return c.UserID == userID && !keep[c.SessionID] })
}

func (h *Hub) disconnect(match func(Client) bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
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
