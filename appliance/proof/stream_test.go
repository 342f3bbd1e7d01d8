package proof_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// streamClient is one realtime client that keeps its connection up,
// resumes from the last event ID it saw after any drop, and records every
// chat message it receives, event by event.
type streamClient struct {
	addr   string
	bearer string

	mu        sync.Mutex
	ws        *websocket.Conn
	lastID    uint64
	seen      map[string]int // message key → times received
	dupEvents int            // events at or below an ID already seen
	resyncs   int            // the server gave up replaying (a loss)
	connects  int
	connected time.Time       // when the current connection opened
	latencies []time.Duration // live deliveries only, not replays
}

func newStreamClient(addr, bearer string) *streamClient {
	return &streamClient{addr: addr, bearer: bearer, seen: map[string]int{}}
}

// run connects and reconnects until ctx ends. With presence > 0 the
// client reports a presence change (online ↔ idle) about that often; each
// change reaches every connection.
func (c *streamClient) run(ctx context.Context, presence time.Duration) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		c.mu.Lock()
		since := c.lastID
		c.mu.Unlock()
		u := "ws://" + c.addr + "/api/v1/ws"
		if since > 0 {
			u += "?since=" + strconv.FormatUint(since, 10)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		ws, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + c.bearer}}})
		cancel()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)))):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		ws.SetReadLimit(1 << 20)
		c.mu.Lock()
		c.ws = ws
		c.connects++
		c.connected = time.Now()
		c.mu.Unlock()
		if presence > 0 {
			go func() {
				st := []string{"online", "idle"}
				for i := 0; ctx.Err() == nil; i++ {
					if ws.Write(ctx, websocket.MessageText, []byte(`{"type":"presence","data":{"state":"`+st[i%2]+`"}}`)) != nil {
						return
					}
					select {
					case <-ctx.Done():
					case <-time.After(presence + time.Duration(rand.Int64N(int64(presence)))):
					}
				}
			}()
		}
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				break
			}
			c.event(b)
		}
		ws.CloseNow()
	}
}

func (c *streamClient) event(b []byte) {
	now := time.Now()
	var env struct {
		Type string          `json:"type"`
		ID   uint64          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &env) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if env.Type == "resync" {
		c.resyncs++
		return
	}
	if env.ID == 0 {
		return
	}
	if env.ID <= c.lastID {
		c.dupEvents++
		return
	}
	c.lastID = env.ID
	if env.Type != "message.new" {
		return
	}
	var m message
	if json.Unmarshal(env.Data, &m) != nil || m.Key == "" {
		return
	}
	c.seen[m.Key]++
	if at, ok := strings.CutPrefix(strings.Fields(m.Text)[0], "t="); ok {
		if ns, err := strconv.ParseInt(at, 10, 64); err == nil && time.Unix(0, ns).After(c.connected) {
			c.latencies = append(c.latencies, now.Sub(time.Unix(0, ns)))
		}
	}
}

// drop cuts the connection without a close frame, as a network blip does.
func (c *streamClient) drop() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
}

// poster posts numbered messages, each retried with its key until it is
// acknowledged, so every key is stored exactly once.
type poster struct {
	api    *apiClient
	ch     string
	prefix string
	posted atomic.Int64
}

func (p *poster) post(ctx context.Context, i int) error {
	key := fmt.Sprintf("%s-%d", p.prefix, i)
	for ctx.Err() == nil {
		body := map[string]any{"text": fmt.Sprintf("t=%d %s", time.Now().UnixNano(), key), "key": key}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.api.do(rctx, "POST", "/api/v1/channels/"+p.ch+"/messages", body, nil)
		cancel()
		if err == nil {
			p.posted.Add(1)
			return nil
		}
		if s := statusOf(err); s != 0 && s != 429 && s < 500 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// deliveryReport checks every client received every key exactly once.
type deliveryReport struct {
	clients, keys       int
	missing, duplicated int
	dupEvents, resyncs  int
	connects            int
	p50, p99, max       time.Duration
	firstProblem        string
}

func checkDelivery(clients []*streamClient, keys []string) deliveryReport {
	r := deliveryReport{clients: len(clients), keys: len(keys)}
	var lat []time.Duration
	for i, c := range clients {
		c.mu.Lock()
		for _, k := range keys {
			switch n := c.seen[k]; {
			case n == 0:
				r.missing++
				if r.firstProblem == "" {
					r.firstProblem = fmt.Sprintf("client %d never got %s", i, k)
				}
			case n > 1:
				r.duplicated++
				if r.firstProblem == "" {
					r.firstProblem = fmt.Sprintf("client %d got %s %d times", i, k, n)
				}
			}
		}
		if len(c.seen) > len(keys) {
			r.duplicated += len(c.seen) - len(keys)
		}
		r.dupEvents += c.dupEvents
		r.resyncs += c.resyncs
		r.connects += c.connects
		lat = append(lat, c.latencies...)
		c.mu.Unlock()
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		r.p50, r.p99, r.max = lat[n/2], lat[n*99/100], lat[n-1]
	}
	return r
}

// waitDelivered waits until every client has every key (or the deadline).
func waitDelivered(clients []*streamClient, keys []string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r := checkDelivery(clients, keys); r.missing == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRestartAndBlip: realtime clients stay through a network blip (every
// connection cut without a close frame) and a server restart while
// messages are being posted; each gets every message once, checked
// event by event.
func TestRestartAndBlip(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, data, addr)
	adminC, _ := setupAdmin(t, p.url(), data, "mum", pw)
	ch := adminC.createChannel(t, map[string]any{"name": "hall"})
	api := adminC.token(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*streamClient
	var wg sync.WaitGroup
	for range 20 {
		c := newStreamClient(addr, api.bearer)
		clients = append(clients, c)
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx, 5*time.Second) }()
	}
	defer wg.Wait()
	defer cancel()
	time.Sleep(300 * time.Millisecond)

	po := &poster{api: api, ch: ch.ID, prefix: "m"}
	const total = 300
	var keys []string
	for i := range total {
		keys = append(keys, fmt.Sprintf("m-%d", i))
	}
	done := make(chan error, 1)
	go func() {
		for i := range total {
			if err := po.post(ctx, i); err != nil {
				done <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		done <- nil
	}()
	for po.posted.Load() < total/3 {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range clients {
		c.drop()
	}
	for po.posted.Load() < 2*total/3 {
		time.Sleep(10 * time.Millisecond)
	}
	p.stop()
	time.Sleep(200 * time.Millisecond) // posts fail and are retried meanwhile
	p = startProc(t, data, addr)
	if err := <-done; err != nil {
		t.Fatalf("posting: %v", err)
	}
	waitDelivered(clients, keys, 30*time.Second)
	r := checkDelivery(clients, keys)
	t.Logf("restart + blip: %d clients × %d messages: missing %d, duplicated %d, duplicate events %d, resyncs %d, connections %d; delivery p50 %v p99 %v",
		r.clients, r.keys, r.missing, r.duplicated, r.dupEvents, r.resyncs, r.connects, r.p50, r.p99)
	if r.missing+r.duplicated+r.dupEvents+r.resyncs > 0 {
		t.Errorf("realtime delivery across a blip and a restart lost or repeated events: %s", r.firstProblem)
	}
	if r.connects < 3*len(clients) {
		t.Errorf("only %d connections for %d clients: the blip or the restart did not cut them", r.connects, len(clients))
	}
	cancel()
	wg.Wait()
	p.stop()
}

// soakLength reads HEARTH_SOAK: a duration, or 1 for ten minutes.
func soakLength() time.Duration {
	v := os.Getenv("HEARTH_SOAK")
	if v == "" {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	return 10 * time.Minute
}
