package relay

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v3"
)

// TestAllocationQuotas: a user at their quota gets 486 however many
// clients share the credential; so does a source address at its quota;
// the server at capacity answers 508. Freed allocations free the quota.
func TestAllocationQuotas(t *testing.T) {
	ts := newTestServer(t, Config{MaxAllocationsPerUser: 2, MaxAllocationsPerAddr: 3, MaxAllocations: 4}, serverOpts{})
	alice := ts.creds(t, "alice", time.Now())
	a1, a2, a3 := dialCreds(t, "udp", alice), dialCreds(t, "udp", alice), dialCreds(t, "udp", alice)
	for i, c := range []*rawClient{a1, a2} {
		if _, err := c.allocate(); err != nil {
			t.Fatalf("alice allocation %d: %v", i+1, err)
		}
	}
	if _, err := a3.allocate(); codeOf(err) != 486 {
		t.Fatalf("alice's third allocation = %v, want 486", err)
	}
	bob := dialCreds(t, "udp", ts.creds(t, "bob", time.Now()))
	if _, err := bob.allocate(); err != nil {
		t.Fatalf("bob's allocation: %v", err)
	}
	// Three allocations from 127.0.0.1: the address is at its quota.
	if _, err := dialCreds(t, "udp", ts.creds(t, "carol", time.Now())).allocate(); codeOf(err) != 486 {
		t.Fatalf("carol's allocation from a full address = %v, want 486", err)
	}
	// Freeing one of alice's lets her allocate again.
	if err := a1.refresh(0); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := a3.allocate(); err != nil {
		t.Fatalf("alice's allocation after freeing one: %v", err)
	}
	st := ts.Stats()
	if st.Refusals[ReasonUserQuota] != 1 || st.Refusals[ReasonAddrQuota] != 1 {
		t.Errorf("Refusals = %v, want one user-quota and one address-quota", st.Refusals)
	}
	if len(st.Allocations) != 3 || st.AllocationsTotal != 4 {
		t.Errorf("%d live allocations, %d in total; want 3, 4", len(st.Allocations), st.AllocationsTotal)
	}
}

// TestCapacity: the server at MaxAllocations answers 508.
func TestCapacity(t *testing.T) {
	ts2 := newTestServer(t, Config{MaxAllocations: 2, MaxAllocationsPerUser: -1, MaxAllocationsPerAddr: -1}, serverOpts{})
	for i := range 2 {
		if _, err := dialCreds(t, "udp", ts2.creds(t, fmt.Sprint("u", i), time.Now())).allocate(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dialCreds(t, "udp", ts2.creds(t, "u9", time.Now())).allocate(); codeOf(err) != 508 {
		t.Fatalf("allocation at capacity = %v, want 508", err)
	}
	if n := ts2.Stats().Refusals[ReasonCapacity]; n != 1 {
		t.Errorf("Refusals[capacity] = %d, want 1", n)
	}
}

// TestPortRangeExhausted: with every relay port taken, Allocate gets 508
// and the ports come from the configured range.
func TestPortRangeExhausted(t *testing.T) {
	held := udpPeer(t, "127.0.0.1:0") // one port of the range is not ours to take
	p := peerAddr(held).Port()
	ts := newTestServer(t, Config{PortMin: p - 1, PortMax: p + 1, MaxAllocationsPerUser: -1}, serverOpts{})
	var got []uint16
	for i := range 2 {
		r, err := dialCreds(t, "udp", ts.creds(t, "alice", time.Now())).allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		got = append(got, r.Port())
	}
	if !(got[0] != got[1] && got[0] != p && got[1] != p && got[0] >= p-1 && got[0] <= p+1 && got[1] >= p-1 && got[1] <= p+1) {
		t.Errorf("relay ports %v, want the two of %d-%d other than %d", got, p-1, p+1, p)
	}
	if _, err := dialCreds(t, "udp", ts.creds(t, "alice", time.Now())).allocate(); codeOf(err) != 508 {
		t.Errorf("allocation with no port free = %v, want 508", err)
	}
}

// TestOnlyUDPRelays: a TCP relay (RFC 6062) is refused with 442.
func TestOnlyUDPRelays(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{tcp: true})
	c := dialCreds(t, "tcp", ts.creds(t, "alice", time.Now()))
	if _, err := c.do(stun.MethodAllocate, requestedTransport(6)); codeOf(err) != 442 {
		t.Errorf("Allocate TCP relay = %v, want 442", err)
	}
}

// TestBandwidthQuota: a user's relayed bytes are bounded by a token
// bucket; the excess is dropped, counted, and logged once.
func TestBandwidthQuota(t *testing.T) {
	const rate = 20_000 // bytes per second, and the burst
	ts := newTestServer(t, Config{AllowPeers: loopback, UserBandwidth: rate}, serverOpts{})
	peer := udpPeer(t, "127.0.0.1:0")
	c := dialCreds(t, "udp", ts.creds(t, "alice", time.Now()))
	if _, err := c.allocate(); err != nil {
		t.Fatal(err)
	}
	if err := c.channelBind(0x4000, peerAddr(peer)); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	start := time.Now()
	for range 100 {
		c.sendChannel(0x4000, payload)
	}
	got := 0
	for {
		if _, _, ok := readPeer(t, peer, 300*time.Millisecond); !ok {
			break
		}
		got++
	}
	elapsed := time.Since(start).Seconds()
	limit := int((rate + rate*elapsed) / 1000) // burst plus refill while the test ran
	if got < rate/1000/2 || got > limit+1 {
		t.Errorf("peer received %d of 100 datagrams of 1000 bytes; want about %d (at most %d)", got, rate/1000, limit)
	}
	st := ts.Stats()
	if st.Users[0].Throttled == 0 || st.Refusals[ReasonBandwidth] != st.Users[0].Throttled {
		t.Errorf("Users[0].Throttled = %d, Refusals[bandwidth] = %d; want equal and > 0",
			st.Users[0].Throttled, st.Refusals[ReasonBandwidth])
	}
	if n := strings.Count(ts.logs.String(), "reason=bandwidth"); n != 1 {
		t.Errorf("bandwidth refusal logged %d times, want once", n)
	}
}

// TestRequestFlood: requests beyond a source address's rate are dropped
// (not answered), and another address is unaffected.
func TestRequestFlood(t *testing.T) {
	ts := newTestServer(t, Config{RequestRate: 5}, serverOpts{}) // burst 10
	binding, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, "udp", ts.udp, "", "")
	for range 40 {
		c.conn.Write(binding.Raw)
	}
	answered := 0
	for {
		if _, err := c.readMsg(200 * time.Millisecond); err != nil {
			break
		}
		answered++
	}
	if answered < 10 || answered > 12 {
		t.Errorf("%d of 40 binding requests answered, want about 10 (the burst)", answered)
	}
	if n := ts.Stats().Refusals[ReasonRate]; n < 28 {
		t.Errorf("Refusals[rate] = %d, want about 30", n)
	}
}

// TestBucket checks the token bucket against a fake clock.
func TestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(100, 200, time.Now())
		if !b.take(200, time.Now()) {
			t.Fatal("take(burst) on a full bucket = false")
		}
		if b.take(1, time.Now()) {
			t.Fatal("take(1) on an empty bucket = true")
		}
		time.Sleep(500 * time.Millisecond)
		if !b.take(50, time.Now()) || b.take(1, time.Now()) {
			t.Fatal("after 0.5 s at 100/s: want exactly 50 tokens")
		}
		time.Sleep(time.Hour)
		if !b.full(time.Now()) || !b.take(200, time.Now()) || b.take(1, time.Now()) {
			t.Fatal("after an hour: want a full bucket of 200, no more")
		}
	})
}

// TestLogLimiter: one line per key per window, with the count of those
// suppressed reported on the next.
func TestLogLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l logLimiter
		if _, ok := l.allow("a", time.Now()); !ok {
			t.Fatal("first allow = false")
		}
		for range 5 {
			if _, ok := l.allow("a", time.Now()); ok {
				t.Fatal("allow within the window = true")
			}
		}
		if _, ok := l.allow("b", time.Now()); !ok {
			t.Fatal("another key was suppressed")
		}
		time.Sleep(logWindow)
		if n, ok := l.allow("a", time.Now()); !ok || n != 5 {
			t.Fatalf("allow after the window = %d, %v; want 5 suppressed, true", n, ok)
		}
	})
}

// TestPeerQuota: one allocation holds at most maxPeers permissions and
// channels; more get 508. (Permissions to public addresses only: nothing is
// sent to them.)
func TestPeerQuota(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{})
	c := dialCreds(t, "udp", ts.creds(t, "alice", time.Now()))
	if _, err := c.allocate(); err != nil {
		t.Fatal(err)
	}
	peer := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{8, 8, byte(i / 200), byte(i % 200)}), 9)
	}
	var batch []netip.AddrPort
	for i := range maxPeers - 1 {
		batch = append(batch, peer(i))
	}
	if err := c.createPermission(batch...); err != nil {
		t.Fatalf("CreatePermission for %d peers: %v", len(batch), err)
	}
	if err := c.createPermission(peer(0), peer(maxPeers-1), peer(maxPeers)); codeOf(err) != 508 {
		t.Fatalf("CreatePermission beyond %d peers = %v, want 508", maxPeers, err)
	}
	if err := c.channelBind(0x4000, peer(maxPeers-1)); err != nil {
		t.Fatalf("ChannelBind to the %dth peer: %v", maxPeers, err)
	}
	if err := c.channelBind(0x4001, peer(maxPeers)); codeOf(err) != 508 {
		t.Fatalf("ChannelBind to one peer too many = %v, want 508", err)
	}
	for i := range maxPeers - 1 { // channels to permitted peers: up to maxPeers in all
		if err := c.channelBind(uint16(0x4001+i), peer(i)); err != nil {
			t.Fatalf("ChannelBind %d: %v", i+2, err)
		}
	}
	if err := c.channelBind(0x4fff, netip.AddrPortFrom(peer(0).Addr(), 10)); codeOf(err) != 508 {
		t.Fatalf("ChannelBind beyond %d channels = %v, want 508", maxPeers, err)
	}
	if n := ts.Stats().Refusals[ReasonPeerQuota]; n != 3 {
		t.Errorf("Refusals[peer-quota] = %d, want 3", n)
	}
}
