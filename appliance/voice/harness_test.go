package voice_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
)

// harness is a Service on loopback with an in-process hub.
type harness struct {
	t   *testing.T
	svc *voice.Service
	hub *voicetest.Hub

	mu     sync.Mutex
	denied map[string]bool // user+"/"+room
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("VOICE_TEST_LOG") == "" {
		return nil
	}
	level := slog.LevelDebug
	if os.Getenv("VOICE_TEST_LOG") == "all" {
		level = slog.LevelDebug - 8 // pion's trace too
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// newHarness starts a Service; cfg's sockets and hooks are filled in.
func newHarness(t *testing.T, cfg voice.Config) *harness {
	t.Helper()
	h := &harness{t: t, hub: voicetest.NewHub(), denied: map[string]bool{}}
	udp, err := listenUDP()
	if err != nil {
		t.Fatal(err)
	}
	cfg.UDP = udp
	cfg.Publish = h.hub.Publish
	cfg.CanJoin = func(user, room string) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return !h.denied[user+"/"+room]
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	svc, err := voice.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	h.hub.Handle = svc.Handle
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func (h *harness) deny(user, room string) {
	h.mu.Lock()
	h.denied[user+"/"+room] = true
	h.mu.Unlock()
}

// who is the hub identity of a test user with one session.
func who(name string) hub.Client {
	return hub.Client{UserID: "u-" + name, SessionID: "s-" + name, Name: name}
}

// client connects a client for name (closed at cleanup).
func (h *harness) client(name string, cfg voicetest.Config) *voicetest.Client {
	h.t.Helper()
	c, err := h.hub.Connect(who(name), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// join joins a new client for name to room and waits until its media flows.
func (h *harness) join(ctx context.Context, name, room string, o voicetest.JoinOptions) *voicetest.Client {
	h.t.Helper()
	c := h.client(name, voicetest.Config{})
	if err := c.Join(ctx, room, o); err != nil {
		h.t.Fatalf("%s joins %s: %v", name, room, err)
	}
	h.waitFor(ctx, name+" connected", c.Connected)
	return c
}

func (h *harness) waitFor(ctx context.Context, what string, cond func() bool) {
	h.t.Helper()
	if err := voicetest.WaitFor(ctx, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// state is the newest room state any of the clients saw... from the
// service itself.
func (h *harness) state(room string) (voice.RoomState, bool) {
	for _, st := range h.svc.Rooms() {
		if st.Room == room {
			return st, true
		}
	}
	return voice.RoomState{}, false
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMain checks that the package's tests leave no goroutine behind: every
// Service, client and connection they made is gone once they are done.
func TestMain(m *testing.M) {
	base := runtime.NumGoroutine()
	code := m.Run()
	// The fuzzing engine keeps goroutines of its own: check only plain runs.
	if f := flag.Lookup("test.fuzz"); code == 0 && (f == nil || f.Value.String() == "") {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "%d goroutines leaked by the tests:\n%s\n", n-base, stacksOf(string(buf)))
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines fails the test if goroutines started during it are
// still running after cleanup (pion's test.CheckRoutines in spirit).
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines leaked:\n%s", n-base, stacksOf(string(buf)))
		}
	})
}

// stacksOf keeps the stacks that mention this module or pion.
func stacksOf(all string) string {
	var keep []string
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "hearth") || strings.Contains(g, "pion") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}

// newHarnessTCP starts a Service that also takes ICE over TCP.
func newHarnessTCP(t *testing.T) *harness {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, voice.Config{TCP: l})
}

func listenUDP() (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }
