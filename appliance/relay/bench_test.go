package relay

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestBenchServe is Hearth's side of .ci/bench-relay: it serves the relay
// on HEARTH_BENCH_RELAY_LISTEN (UDP, loopback) until SIGTERM, with the
// shared secret HEARTH_BENCH_RELAY_SECRET, relay ports
// HEARTH_BENCH_RELAY_PORTS ("MIN-MAX") on 127.0.0.1, and
// HEARTH_BENCH_RELAY_SOCKETS SO_REUSEPORT sockets (default 1). Loopback
// peers are allowed for the bench only; the allocation quotas and request
// rate are off (the bench's clients share one user and one address), and
// the bandwidth quota is set high enough never to bite, so its token
// bucket still runs for every datagram. It writes "ready" to
// HEARTH_BENCH_RELAY_READY once serving. Skipped unless the bench sets
// HEARTH_BENCH_RELAY_LISTEN.
func TestBenchServe(t *testing.T) {
	listen := os.Getenv("HEARTH_BENCH_RELAY_LISTEN")
	if listen == "" {
		t.Skip("run by .ci/bench-relay")
	}
	lo, hi, ok := strings.Cut(os.Getenv("HEARTH_BENCH_RELAY_PORTS"), "-")
	pmin, err1 := strconv.ParseUint(lo, 10, 16)
	pmax, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("HEARTH_BENCH_RELAY_PORTS=%q: want MIN-MAX", os.Getenv("HEARTH_BENCH_RELAY_PORTS"))
	}
	sockets := 1
	if v := os.Getenv("HEARTH_BENCH_RELAY_SOCKETS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HEARTH_BENCH_RELAY_SOCKETS=%q: want a positive number", v)
		}
		sockets = n
	}
	var conns []net.PacketConn
	if sockets == 1 {
		pc, err := net.ListenPacket("udp4", listen)
		if err != nil {
			t.Fatal(err)
		}
		conns = []net.PacketConn{pc}
	} else {
		var err error
		if conns, err = ListenUDPReusePort(listen, sockets); err != nil {
			t.Fatal(err)
		}
	}
	secret := []byte(os.Getenv("HEARTH_BENCH_RELAY_SECRET"))
	s, err := New(Config{
		UDP:                   conns[0],
		MoreUDP:               conns[1:],
		RelayIP:               netip.MustParseAddr("127.0.0.1"),
		PortMin:               uint16(pmin),
		PortMax:               uint16(pmax),
		Secrets:               func() ([]byte, [][]byte) { return secret, nil },
		AllowPeers:            loopback,
		MaxAllocationsPerUser: -1,
		MaxAllocationsPerAddr: -1,
		RequestRate:           -1,
		UserBandwidth:         1 << 40,
		Logger:                slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if f := os.Getenv("HEARTH_BENCH_RELAY_READY"); f != "" {
		if err := os.WriteFile(f, []byte("ready\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	<-sig
	st := s.Stats()
	t.Logf("relayed %d bytes in, %d out; %d allocations", st.BytesIn, st.BytesOut, st.AllocationsTotal)
}
