package transfer_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store/storetest"
	"github.com/hearth-home/hearth/appliance/transfer"
)

// harness is a transfer service with a fake hub: a list of who is online,
// the events published (by session) and a clock the test moves.
type harness struct {
	t   testing.TB
	svc *transfer.Service

	mu           sync.Mutex
	now          time.Time
	online       []hub.Client
	events       []hub.Event
	disconnected []string
}

var (
	mumLaptop = hub.Client{UserID: "u-mum", SessionID: "s-mum-laptop", Name: "mum"}
	mumPhone  = hub.Client{UserID: "u-mum", SessionID: "s-mum-phone", Name: "mum"}
	dadPhone  = hub.Client{UserID: "u-dad", SessionID: "s-dad-phone", Name: "dad"}
	dadLaptop = hub.Client{UserID: "u-dad", SessionID: "s-dad-laptop", Name: "dad"}
	kidTablet = hub.Client{UserID: "u-kid", SessionID: "s-kid-tablet", Name: "kid"}
)

var devices = map[string]string{
	"s-mum-laptop": "Firefox on Linux", "s-mum-phone": "Chrome on Android",
	"s-dad-phone": "Safari on iPhone", "s-dad-laptop": "hearth CLI", "s-kid-tablet": "Safari on iPad",
}

func newHarness(t testing.TB, withStore bool, opts ...func(*transfer.Config)) *harness {
	t.Helper()
	h := &harness{t: t, now: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC),
		online: []hub.Client{mumLaptop, mumPhone, dadPhone, dadLaptop, kidTablet}}
	cfg := transfer.Config{
		Publish: func(ev hub.Event) { h.mu.Lock(); h.events = append(h.events, ev); h.mu.Unlock() },
		Online:  func() []hub.Client { h.mu.Lock(); defer h.mu.Unlock(); return slices.Clone(h.online) },
		Device:  func(_, sid string) string { return devices[sid] },
		Disconnect: func(u string) {
			h.mu.Lock()
			h.disconnected = append(h.disconnected, u)
			h.mu.Unlock()
		},
		Now: func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now },
	}
	if withStore {
		cfg.Store = storetest.Open(t)
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := transfer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	return h
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) goOffline(sessions ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.online = slices.DeleteFunc(h.online, func(c hub.Client) bool { return slices.Contains(sessions, c.SessionID) })
}

func (h *harness) comeOnline(c hub.Client) {
	h.mu.Lock()
	h.online = append(h.online, c)
	h.mu.Unlock()
}

func nonce() string { return rand.Text() }

// data builds a message's data with a fresh ts and nonce.
func (h *harness) data(fields map[string]any) json.RawMessage {
	m := map[string]any{"ts": h.clock().UnixMilli(), "nonce": nonce()}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// send runs a message from c and returns the error code ("" for none).
func (h *harness) send(c hub.Client, typ string, fields map[string]any) string {
	h.t.Helper()
	return code(h.svc.Handle(context.Background(), c, typ, h.data(fields)))
}

func code(err error) string {
	if err == nil {
		return ""
	}
	if c := transfer.Code(err); c != "" {
		return c
	}
	return "error: " + err.Error()
}

// take returns and forgets the events published so far.
func (h *harness) take() []hub.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.events
	h.events = nil
	return evs
}

// got is what one session received: event type → data.
type got struct {
	typ  string
	data map[string]any
}

// to returns the events (in order) that reached session among evs.
func to(evs []hub.Event, session string) []got {
	var out []got
	for _, ev := range evs {
		if !slices.Contains(ev.Sessions, session) {
			continue
		}
		b, _ := json.Marshal(ev.Data)
		var d map[string]any
		json.Unmarshal(b, &d)
		out = append(out, got{ev.Type, d})
	}
	return out
}

func types(gs []got) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.typ)
	}
	return out
}

// offer makes an offer from c and returns the new transfer's ID.
func (h *harness) offer(c hub.Client, fields map[string]any) string {
	h.t.Helper()
	if _, ok := fields["files"]; !ok {
		fields["files"] = []map[string]any{{"name": "holiday.jpg", "size": 2048, "type": "image/jpeg"}, {"name": "notes/day 1.txt", "size": 10, "type": "text/plain"}}
	}
	if c := h.send(c, transfer.TypeOffer, fields); c != "" {
		h.t.Fatalf("offer from %s = %s", c, c)
	}
	evs := to(h.take(), c.SessionID)
	if len(evs) != 1 || evs[0].typ != transfer.TypeCreated {
		h.t.Fatalf("offer answer = %v, want transfer.created", evs)
	}
	return evs[0].data["id"].(string)
}
