package relay

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/turn/v4"
)

// pionClient connects a pion TURN client with c over transport.
func pionClient(t *testing.T, transport string, c Credentials) *turn.Client {
	t.Helper()
	addr := turnAddr(t, c, transport)
	var conn net.PacketConn
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case "tcp":
		tc, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(tc)
	case "tls":
		tc, err := tls.Dial("tcp4", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(tc)
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Username:       c.Username,
		Password:       c.Credential,
		Conn:           conn,
		LoggerFactory:  pionLogger{s: &Server{log: slog.New(slog.DiscardHandler)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		conn.Close()
	})
	return client
}

// TestRoundTrip: a pion client allocates with credentials from
// Credentials, relays to an echoing peer on loopback (allowed by this
// test's config only) and gets the data back, over each transport.
func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name, transport string
		generic         bool
	}{
		{"udp", "udp", false},
		{"tcp", "tcp", false},
		{"tls", "tls", false},
		{"udp on another PacketConn", "udp", true},
	} {
		transport := tt.transport
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{AllowPeers: loopback}, serverOpts{tcp: true, tls: true, generic: tt.generic})
			creds := ts.creds(t, "alice", time.Now())
			client := pionClient(t, transport, creds)
			relayConn, err := client.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relayConn.Close()

			peer := udpPeer(t, "127.0.0.1:0")
			go func() { // echo
				b := make([]byte, 2048)
				for {
					n, from, err := peer.ReadFrom(b)
					if err != nil {
						return
					}
					peer.WriteTo(b[:n], from)
				}
			}()
			b := make([]byte, 2048)
			for i := range 20 { // the first go as Send indications, later ones on the channel pion binds
				msg := fmt.Appendf(nil, "hello %d over %s", i, transport)
				if _, err := relayConn.WriteTo(msg, peer.LocalAddr()); err != nil {
					t.Fatalf("WriteTo: %v", err)
				}
				relayConn.SetReadDeadline(time.Now().Add(3 * time.Second))
				n, from, err := relayConn.ReadFrom(b)
				if err != nil {
					t.Fatalf("ReadFrom after message %d: %v", i, err)
				}
				if !bytes.Equal(b[:n], msg) || from.String() != peer.LocalAddr().String() {
					t.Fatalf("ReadFrom = %q from %v, want %q from %v", b[:n], from, msg, peer.LocalAddr())
				}
			}

			st := ts.Stats()
			if len(st.Allocations) != 1 {
				t.Fatalf("Stats().Allocations = %+v, want 1", st.Allocations)
			}
			a := st.Allocations[0]
			if a.User != "alice" || a.Transport != transport || a.Peers != 1 || a.BytesIn == 0 || a.BytesOut != a.BytesIn ||
				a.Relay.Addr() != netip.MustParseAddr("127.0.0.1") || a.Client.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("Stats().Allocations[0] = %+v", a)
			}
			if len(st.Users) != 1 || st.Users[0].User != "alice" || st.Users[0].Allocations != 1 {
				t.Errorf("Stats().Users = %+v", st.Users)
			}
		})
	}
}

// TestBinding: the UDP listener answers STUN binding requests without
// credentials.
func TestBinding(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{})
	client := pionClient(t, "udp", Credentials{URLs: []string{"turn:" + ts.udp + "?transport=udp"}})
	mapped, err := client.SendBindingRequest()
	if err != nil {
		t.Fatalf("SendBindingRequest: %v", err)
	}
	if ap := addrPort(mapped); ap.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("mapped address = %v, want 127.0.0.1:*", mapped)
	}
}

// TestRelayToRelay: with the default policy, two clients of this server
// relay to each other's relayed addresses (here on 127.0.0.2, the relay
// IP), while datagrams to other ports of the appliance's own address are
// dropped although the IP has a permission.
func TestRelayToRelay(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run("alice over "+transport, func(t *testing.T) { testRelayToRelay(t, transport) })
	}
}

func testRelayToRelay(t *testing.T, transport string) {
	relayIP := netip.MustParseAddr("127.0.0.2")
	ts := newTestServer(t, Config{RelayIP: relayIP}, serverOpts{tcp: true})
	alice := dialCreds(t, transport, ts.creds(t, "alice", time.Now()))
	bob := dialCreds(t, "udp", ts.creds(t, "bob", time.Now()))
	ra, err := alice.allocate()
	if err != nil {
		t.Fatalf("alice allocate: %v", err)
	}
	rb, err := bob.allocate()
	if err != nil {
		t.Fatalf("bob allocate: %v", err)
	}
	if ra.Addr() != relayIP || rb.Addr() != relayIP {
		t.Fatalf("relayed addresses %v, %v; want on %v", ra, rb, relayIP)
	}
	if err := alice.channelBind(0x4000, rb); err != nil {
		t.Fatalf("alice ChannelBind to bob's relay: %v", err)
	}
	if err := bob.createPermission(ra); err != nil {
		t.Fatalf("bob CreatePermission for alice's relay: %v", err)
	}
	alice.sendChannel(0x4000, []byte("hi bob"))
	if got, ch, err := bob.receiveOn(3 * time.Second); err != nil || string(got) != "hi bob" || ch != 0 {
		t.Fatalf("bob received %q on channel %#x, %v; want hi bob in a Data indication", got, ch, err)
	}
	bob.sendIndication(ra, []byte("hi alice"))
	if got, ch, err := alice.receiveOn(3 * time.Second); err != nil || string(got) != "hi alice" || ch != 0x4000 {
		t.Fatalf("alice received %q on channel %#x, %v; want hi alice on 0x4000", got, ch, err)
	}
	if err := bob.channelBind(0x4abc, ra); err != nil {
		t.Fatalf("bob ChannelBind to alice's relay: %v", err)
	}
	alice.sendChannel(0x4000, []byte("on a channel now"))
	if got, ch, err := bob.receiveOn(3 * time.Second); err != nil || string(got) != "on a channel now" || ch != 0x4abc {
		t.Fatalf("bob received %q on channel %#x, %v; want it on 0x4abc", got, ch, err)
	}

	// The permission is for the IP address; other ports there are the
	// appliance's, not relays.
	service := udpPeer(t, "127.0.0.2:0")
	alice.sendIndication(peerAddr(service), []byte("to a service port"))
	alice.sendChannel(0x4000, []byte("still relayed"))
	if got, err := bob.receive(3 * time.Second); err != nil || string(got) != "still relayed" {
		t.Fatalf("bob received %q, %v; want still relayed", got, err)
	}
	if b, _, ok := readPeer(t, service, 200*time.Millisecond); ok {
		t.Fatalf("service port on the relay address received %q; want nothing", b)
	}
	if n := ts.Stats().Refusals[ReasonOwnAddress]; n != 1 {
		t.Errorf("Refusals[%s] = %d, want 1", ReasonOwnAddress, n)
	}
}

// TestProtectedPortNotRelayed: a peer allowed by AllowPeers still cannot
// reach a protected service port, datagram by datagram.
func TestProtectedPortNotRelayed(t *testing.T) {
	service := udpPeer(t, "127.0.0.1:0")
	open := udpPeer(t, "127.0.0.1:0")
	ts := newTestServer(t, Config{AllowPeers: loopback, ProtectedPorts: []uint16{peerAddr(service).Port()}}, serverOpts{})
	c := dialCreds(t, "udp", ts.creds(t, "alice", time.Now()))
	if _, err := c.allocate(); err != nil {
		t.Fatal(err)
	}
	if err := c.createPermission(peerAddr(open)); err != nil {
		t.Fatalf("CreatePermission(%v): %v", peerAddr(open), err)
	}
	if err := c.createPermission(peerAddr(service)); codeOf(err) != 403 {
		t.Fatalf("CreatePermission(protected %v) = %v, want 403", peerAddr(service), err)
	}
	c.sendIndication(peerAddr(service), []byte("sneaky"))
	c.sendIndication(peerAddr(open), []byte("fine"))
	if b, _, ok := readPeer(t, open, 3*time.Second); !ok || string(b) != "fine" {
		t.Fatalf("open peer got %q, %v; want fine", b, ok)
	}
	if b, _, ok := readPeer(t, service, 200*time.Millisecond); ok {
		t.Fatalf("protected port received %q", b)
	}
}

// TestDualStackListener: a UDP socket on [::] (the wiring point binds
// :3478) serves IPv4 clients, whose addresses arrive IPv4-mapped; channel
// data flows both ways.
func TestDualStackListener(t *testing.T) {
	ts := newTestServer(t, Config{AllowPeers: loopback}, serverOpts{udp: ":0"})
	peer := udpPeer(t, "127.0.0.1:0")
	c := dialCreds(t, "udp", ts.creds(t, "alice", time.Now()))
	relayed, err := c.allocate()
	if err != nil {
		t.Fatalf("allocate through %s: %v", ts.udp, err)
	}
	if err := c.channelBind(0x4000, peerAddr(peer)); err != nil {
		t.Fatal(err)
	}
	c.sendChannel(0x4000, []byte("ping"))
	b, from, ok := readPeer(t, peer, 3*time.Second)
	if !ok || string(b) != "ping" || from != relayed {
		t.Fatalf("peer got %q from %v, %v; want ping from %v", b, from, ok, relayed)
	}
	peer.WriteToUDPAddrPort([]byte("pong"), from)
	if got, ch, err := c.receiveOn(3 * time.Second); err != nil || string(got) != "pong" || ch != 0x4000 {
		t.Fatalf("client received %q on %#x, %v; want pong on 0x4000", got, ch, err)
	}
	if a := ts.Stats().Allocations[0]; a.Client.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("client address %v, want 127.0.0.1 (unmapped)", a.Client)
	}
}

// TestReusePortSockets: a server on several SO_REUSEPORT sockets serves
// clients spread over them.
func TestReusePortSockets(t *testing.T) {
	ts := newTestServer(t, Config{AllowPeers: loopback}, serverOpts{moreUDP: 3})
	peer := udpPeer(t, "127.0.0.1:0")
	for i := range 8 {
		c := dialCreds(t, "udp", ts.creds(t, fmt.Sprint("user", i), time.Now()))
		if _, err := c.allocate(); err != nil {
			t.Fatalf("client %d allocate: %v", i, err)
		}
		if err := c.channelBind(0x4001, peerAddr(peer)); err != nil {
			t.Fatalf("client %d ChannelBind: %v", i, err)
		}
		c.sendChannel(0x4001, []byte("x"))
		if _, _, ok := readPeer(t, peer, 3*time.Second); !ok {
			t.Fatalf("client %d: nothing relayed", i)
		}
	}
	if n := len(ts.Stats().Allocations); n != 8 {
		t.Errorf("%d allocations, want 8", n)
	}
}

// TestMalformedInput: junk, truncated messages and oversized frames are
// dropped without disturbing a client that behaves.
func TestMalformedInput(t *testing.T) {
	ts := newTestServer(t, Config{AllowPeers: loopback}, serverOpts{tcp: true})
	junk := [][]byte{
		{},
		{0x00},
		{0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42},                                    // truncated Allocate
		append([]byte{0x00, 0x03, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 16)...), // length lies
		append([]byte{0x00, 0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef}, make([]byte, 20)...), // bad cookie
		{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4},                                                // ChannelData without allocation
		bytes.Repeat([]byte{0xff}, 1500),
	}
	u, err := net.Dial("udp4", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, j := range junk {
		u.Write(j)
	}
	tc, err := net.Dial("tcp4", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.Write([]byte{0xc0, 0, 0, 0}) // not a TURN frame: the connection is dropped
	tc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Errorf("TCP connection sending junk was not closed")
	}
	for _, transport := range []string{"udp", "tcp"} {
		c := dialCreds(t, transport, ts.creds(t, "alice", time.Now()))
		if _, err := c.allocate(); err != nil {
			t.Fatalf("%s allocate after junk: %v", transport, err)
		}
	}
}

// TestCloseIdempotent: Close twice; Stats still answers.
func TestCloseIdempotent(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{tcp: true})
	c := dialCreds(t, "tcp", ts.creds(t, "alice", time.Now()))
	if _, err := c.allocate(); err != nil {
		t.Fatal(err)
	}
	if err := ts.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := ts.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	_ = ts.Stats()
}
