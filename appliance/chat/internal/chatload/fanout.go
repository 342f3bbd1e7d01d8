package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// target is a server under test: it connects receiving clients to one
// channel and publishes into it.
type target interface {
	// dial connects client i, subscribed and ready to receive.
	dial(ctx context.Context, i int) (*websocket.Conn, error)
	// publish sends text into the channel and returns once the server has
	// accepted it (Hearth: committed).
	publish(ctx context.Context, text, key string) error
	// pong answers an application-level ping in frame, if it is one.
	pong(ctx context.Context, ws *websocket.Conn, frame []byte) error
	// metrics returns extra figures about the server (may be empty).
	metrics(ctx context.Context) map[string]float64
}

// receiver is one connected client and what it got.
type receiver struct {
	ws      *websocket.Conn
	counts  []uint8 // per message sequence number
	lat     []int32 // µs from send to receipt
	dropped error   // set when the server closed the connection early
	done    chan struct{}
}

// clock is a monotonic clock shared by the sender and the receivers.
type clock struct{ start time.Time }

func (c clock) now() int64 { return int64(time.Since(c.start)) }

// receive reads frames until the connection is closed, recording every
// timed message. It reads without a deadline (a context with a deadline
// costs a timer per frame, which would load the load generator): stop
// sets stopping and closes the connection.
func (r *receiver) receive(t target, clk clock, total *atomic.Int64, stopping *atomic.Bool) {
	defer close(r.done)
	ctx := context.Background()
	buf := make([]byte, 0, 4096)
	for {
		_, rd, err := r.ws.Reader(ctx)
		if err != nil {
			if !stopping.Load() {
				r.dropped = err
			}
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, len(buf))
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				if !stopping.Load() {
					r.dropped = err
				}
				return
			}
		}
		now := clk.now()
		frame := buf
		for {
			i := bytes.Index(frame, []byte(marker))
			if i < 0 {
				break
			}
			frame = frame[i+len(marker):]
			seq, rest, ok := number(frame)
			if !ok {
				continue
			}
			sent, _, ok := number(rest)
			if !ok || seq >= uint64(len(r.counts)) {
				continue
			}
			if r.counts[seq] < math.MaxUint8 {
				r.counts[seq]++
			}
			r.lat = append(r.lat, int32(min((now-int64(sent))/1000, math.MaxInt32)))
			total.Add(1)
		}
		if err := t.pong(ctx, r.ws, buf); err != nil && !stopping.Load() {
			r.dropped = err
			return
		}
	}
}

// number parses a decimal number followed by a space.
func number(b []byte) (uint64, []byte, bool) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 || i > 20 {
		return 0, nil, false
	}
	n, err := strconv.ParseUint(string(b[:i]), 10, 64)
	return n, b[i+1:], err == nil
}

func fanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	kind := fs.String("target", "hearth", "hearth or centrifugo")
	base := fs.String("url", "", "centrifugo: its base URL (loopback)")
	path := fs.String("sessions", "", "hearth: file from hearth-prepare")
	cfgPath := fs.String("config", "", "centrifugo: its config file (from centrifugo-config)")
	pid := fs.Int("pid", 0, "the server's process ID, for its memory")
	clients := fs.Int("clients", 1000, "connected WebSocket clients")
	rate := fs.Int("rate", 100, "messages per second")
	duration := fs.Duration("duration", 20*time.Second, "how long to send")
	settle := fs.Duration("settle", 3*time.Second, "wait before reading memory")
	parallel := fs.Int("parallel", 50, "connections opened at once")
	prefix := fs.String("prefix", "", "prefix of the figures' keys (default: the target)")
	out := fs.String("out", "", "file for the figures")
	cpuProfile := fs.String("cpuprofile", "", "write chatload's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clients < 1 || *clients > 20000 || *rate < 1 || *rate > 10000 || *duration <= 0 || *duration > 5*time.Minute || *pid <= 0 {
		return errors.New("fanout needs -pid, 1 <= -clients <= 20000, 1 <= -rate <= 10000, 0 < -duration <= 5m")
	}
	if *prefix == "" {
		*prefix = *kind
	}
	t, err := newTarget(*kind, *base, *path, *cfgPath)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration+3*time.Minute)
	defer cancel()
	r := &fanoutRun{t: t, kind: *kind, prefix: *prefix, messages: int(float64(*rate) * duration.Seconds())}
	defer r.closeAll()
	if err := r.connect(ctx, *pid, *clients, *parallel, *settle); err != nil {
		return err
	}
	r.send(ctx, *rate)
	r.tally()
	return r.f.write(*out)
}

func newTarget(kind, base, sessions, cfgPath string) (target, error) {
	switch kind {
	case "hearth":
		h, err := readHousehold(sessions)
		if err != nil {
			return nil, err
		}
		return &hearthTarget{h: h}, nil
	case "centrifugo":
		if _, err := loopback(base); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(cfgPath)
		if err != nil {
			return nil, err
		}
		var s centrifugoSettings
		if err := json.Unmarshal(b, &s); err != nil || s.Secret == "" || s.APIKey == "" {
			return nil, fmt.Errorf("%s: no token_hmac_secret_key or api_key (%v)", cfgPath, err)
		}
		return &centrifugoTarget{base: base, apiKey: s.APIKey, secret: s.Secret, channel: "chat"}, nil
	}
	return nil, fmt.Errorf("unknown -target %q", kind)
}

// fanoutRun is one fan-out measurement: clients connected to a target,
// timed messages sent to them, and the figures.
type fanoutRun struct {
	t        target
	kind     string
	prefix   string
	messages int
	f        figures

	rs       []*receiver
	clk      clock
	received atomic.Int64 // timed messages received, over all clients
	stopping atomic.Bool

	acked    []bool
	ackLat   []float64 // ms from send to acknowledgement
	sendErrs atomic.Int64
	stalls   int           // sends delayed because too many were in flight
	sendTime time.Duration // from the first send to the last
}

func (r *fanoutRun) add(key string, v float64) { r.f.add(r.prefix+"_"+key, v) }

// connect measures the server's memory with no client, connects every
// client (parallel at a time), starts their receivers, and measures the
// memory again once it has settled.
func (r *fanoutRun) connect(ctx context.Context, pid, clients, parallel int, settle time.Duration) error {
	rss0, err := settledMemory(pid, settle)
	if err != nil {
		return err
	}
	m0 := r.t.metrics(ctx)
	logf("%s: connecting %d clients (%d at once)", r.kind, clients, parallel)
	r.rs = make([]*receiver, clients)
	var next atomic.Int64
	errs := make(chan error, parallel)
	start := time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= clients || ctx.Err() != nil {
					return
				}
				dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
				ws, err := r.t.dial(dctx, i)
				dcancel()
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				r.rs[i] = &receiver{ws: ws, counts: make([]uint8, r.messages), done: make(chan struct{})}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	connectTime := time.Since(start)
	r.clk = clock{start: time.Now()}
	for _, rc := range r.rs {
		go rc.receive(r.t, r.clk, &r.received, &r.stopping)
	}
	rss1, err := settledMemory(pid, settle)
	if err != nil {
		return err
	}
	m1 := r.t.metrics(ctx)
	if v, ok := m1["hearth_realtime_connections"]; ok && int(v) != clients {
		return fmt.Errorf("hearth_realtime_connections = %v, want %d", v, clients)
	}
	r.add("clients", float64(clients))
	r.add("connect_seconds", connectTime.Seconds())
	r.add("rss0_kib", rss0)
	r.add("rss1_kib", rss1)
	r.add("rss_per_client_kib", (rss1-rss0)/float64(clients))
	if h0, h1 := m0["hearth_heap_bytes"], m1["hearth_heap_bytes"]; h1 > 0 {
		r.add("heap_per_client_kib", (h1-h0)/1024/float64(clients))
		r.add("goroutines_per_client", (m1["hearth_goroutines"]-m0["hearth_goroutines"])/float64(clients))
	}
	return nil
}

// send publishes r.messages timed messages at rate per second, open loop:
// a slow acknowledgement does not delay the next send, up to two seconds'
// worth of sends in flight; past that, sends wait (and are counted as
// stalls), so the achieved rate is reported too. It returns once every
// send is answered.
func (r *fanoutRun) send(ctx context.Context, rate int) {
	logf("%s: sending %d messages at %d/s to %d clients", r.kind, r.messages, rate, len(r.rs))
	r.acked = make([]bool, r.messages)
	r.ackLat = make([]float64, r.messages)
	var firstErr atomic.Value
	var inflight sync.WaitGroup
	sem := make(chan struct{}, 2*rate)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	for seq := range r.messages {
		<-tick.C
		select {
		case sem <- struct{}{}:
		default:
			r.stalls++
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		inflight.Add(1)
		go func() {
			defer func() { <-sem; inflight.Done() }()
			sent := r.clk.now()
			text := fmt.Sprintf("chatload %d %d %s", seq, sent, filler)
			if err := r.t.publish(ctx, text, runID+"-"+strconv.Itoa(seq)); err != nil {
				r.sendErrs.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			r.acked[seq] = true
			r.ackLat[seq] = float64(r.clk.now()-sent) / 1e6
		}()
	}
	r.sendTime = time.Since(start)
	inflight.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		logf("%s: %d sends failed, first: %v", r.kind, r.sendErrs.Load(), err)
	}
}

// tally waits (at most 10 s) for the last deliveries, stops the receivers
// and counts latencies, losses and duplicates.
func (r *fanoutRun) tally() {
	var acks []float64
	for seq, a := range r.acked {
		if a {
			acks = append(acks, r.ackLat[seq])
		}
	}
	slices.Sort(acks)
	want := int64(len(acks)) * int64(len(r.rs))
	drain := time.Now().Add(10 * time.Second)
	for r.received.Load() < want && time.Now().Before(drain) {
		time.Sleep(20 * time.Millisecond)
	}
	r.closeAll()

	var lost, dups, extra, dropped, worst int
	var lat []int32
	for _, rc := range r.rs {
		if rc.dropped != nil {
			dropped++
		}
		l := 0
		for seq, n := range rc.counts {
			switch {
			case r.acked[seq] && n == 0:
				l++
			case n > 1:
				dups += int(n) - 1
			case !r.acked[seq] && n > 0:
				extra++
			}
		}
		lost += l
		worst = max(worst, l)
		lat = append(lat, rc.lat...)
	}
	slices.Sort(lat)
	ms := func(us int32) float64 { return float64(us) / 1000 }
	r.add("messages", float64(r.messages))
	r.add("acked", float64(len(acks)))
	r.add("send_errors", float64(r.sendErrs.Load()))
	r.add("send_stalls", float64(r.stalls))
	r.add("send_seconds", r.sendTime.Seconds())
	r.add("achieved_rate", float64(r.messages)/r.sendTime.Seconds())
	r.add("ack_p50_ms", percentile(acks, 0.50))
	r.add("ack_p99_ms", percentile(acks, 0.99))
	r.add("deliveries", float64(len(lat)))
	r.add("p50_ms", ms(percentile(lat, 0.50)))
	r.add("p90_ms", ms(percentile(lat, 0.90)))
	r.add("p99_ms", ms(percentile(lat, 0.99)))
	r.add("p999_ms", ms(percentile(lat, 0.999)))
	r.add("max_ms", ms(percentile(lat, 1)))
	r.add("lost", float64(lost))
	r.add("lost_worst_client", float64(worst))
	r.add("duplicates", float64(dups))
	r.add("unacked_received", float64(extra))
	r.add("dropped_clients", float64(dropped))
}

// closeAll stops the receivers and closes their connections; it is safe
// to call more than once.
func (r *fanoutRun) closeAll() {
	r.stopping.Store(true)
	for _, rc := range r.rs {
		if rc != nil {
			rc.ws.CloseNow()
			if r.clk.start.IsZero() {
				continue // receivers never started
			}
			<-rc.done
		}
	}
}
