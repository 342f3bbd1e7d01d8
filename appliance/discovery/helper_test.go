package discovery

// Helper modes of the test binary. The namespace tests re-execute the test
// binary inside a network namespace (`ip netns exec NS <test binary>`) with
// HEARTH_DISCOVERY_HELPER naming what to do there; the helper writes one
// JSON event per line on stdout and stops when its stdin closes.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const helperEnv = "HEARTH_DISCOVERY_HELPER"

// event is one line a helper prints.
type event struct {
	Event    string       `json:"event"` // run, status, record, result
	At       int64        `json:"at"`    // Unix nanoseconds
	Status   *Status      `json:"status,omitempty"`
	Record   *seenRecord  `json:"record,omitempty"`
	Services []Service    `json:"services,omitempty"`
	Addrs    []netip.Addr `json:"addrs,omitempty"`
	Elapsed  float64      `json:"elapsed_ms,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// seenRecord is a record a watcher saw in a response.
type seenRecord struct {
	Src  string `json:"src"`
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func runHelper(mode string) int {
	out := json.NewEncoder(os.Stdout)
	emit := func(e event) {
		e.At = time.Now().UnixNano()
		_ = out.Encode(e)
	}
	// stdin closing (the test ending or dropping us) stops the
	// long-running helpers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if mode == "announce" || mode == "watch" {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	dur := func(k, def string) time.Duration {
		d, err := time.ParseDuration(env(k, def))
		if err != nil {
			panic(fmt.Sprintf("%s: %v", k, err))
		}
		return d
	}
	switch mode {
	case "announce":
		port, _ := strconv.Atoi(env("HD_PORT", "8443"))
		a, err := New(Config{Name: env("HD_NAME", "hearth"), Version: env("HD_VERSION", "test"), Port: port,
			PollInterval: dur("HD_POLL", "5s"), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			emit(event{Event: "result", Error: err.Error()})
			return 1
		}
		emit(event{Event: "run"})
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		var last []byte
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				st := a.Status()
				e := event{Event: "status", Status: &st}
				if err != nil {
					e.Error = err.Error()
				}
				emit(e)
				return 0
			case <-tick.C:
				st := a.Status()
				st.Since = time.Time{}
				b, _ := json.Marshal(st)
				if string(b) != string(last) {
					last = b
					emit(event{Event: "status", Status: &st})
				}
			}
		}
	case "watch":
		ifaces, err := multicastInterfaces()
		if err != nil {
			emit(event{Event: "result", Error: err.Error()})
			return 1
		}
		t, err := listenMDNS(ifaces)
		if err != nil {
			emit(event{Event: "result", Error: err.Error()})
			return 1
		}
		defer t.Close()
		emit(event{Event: "run"})
		for {
			select {
			case <-ctx.Done():
				return 0
			case p := <-t.Packets():
				m, ok := parse(p.data)
				if !ok || !m.Response {
					continue
				}
				for _, rr := range append(m.Answer, m.Extra...) {
					h := rr.Header()
					emit(event{Event: "record", Record: &seenRecord{Src: p.src.Addr().String(), Name: strings.ToLower(h.Name),
						Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl, Data: strings.TrimPrefix(rr.String(), h.String())}})
				}
			}
		}
	case "browse":
		start := time.Now()
		svcs, err := Browse(ctx, dur("HD_TIMEOUT", "2s"))
		e := event{Event: "result", Services: svcs, Elapsed: ms(time.Since(start))}
		if err != nil {
			e.Error = err.Error()
		}
		emit(e)
	case "resolve":
		// HD_RETRY sets how often to ask; the default is Resolve's backoff.
		start := time.Now()
		rctx, rcancel := context.WithTimeout(ctx, dur("HD_TIMEOUT", "5s"))
		defer rcancel()
		var addrs []netip.Addr
		var err error
		if retry := os.Getenv("HD_RETRY"); retry != "" {
			var t *udpTransport
			if t, err = listenUDP(mustInterfaces(), 0); err == nil {
				addrs, err = resolve(rctx, t, env("HD_HOST", "hearth.local"), dur("HD_RETRY", ""), dur("HD_RETRY", ""))
				t.Close()
			}
		} else {
			addrs, err = Resolve(rctx, env("HD_HOST", "hearth.local"))
		}
		e := event{Event: "result", Addrs: addrs, Elapsed: ms(time.Since(start))}
		if err != nil {
			e.Error = err.Error()
		}
		emit(e)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	return 0
}

func mustInterfaces() []net.Interface {
	ifaces, err := multicastInterfaces()
	if err != nil {
		panic(err)
	}
	return ifaces
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// readEvents decodes a helper's stdout into a channel, closed at EOF.
func readEvents(r io.Reader) <-chan event {
	ch := make(chan event, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				ch <- e
			}
		}
	}()
	return ch
}
