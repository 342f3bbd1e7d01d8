package relay

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func TestNewValidates(t *testing.T) {
	secrets := func() ([]byte, [][]byte) { return []byte("s"), nil }
	udp := func() net.PacketConn {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		cfg  func() Config
		want string
	}{
		{"no listener", func() Config { return Config{Secrets: secrets} }, "no listener"},
		{"no secrets", func() Config { return Config{UDP: udp()} }, "Secrets hook is required"},
		{"MoreUDP alone", func() Config { return Config{MoreUDP: []net.PacketConn{udp()}, TCP: nil, Secrets: secrets} }, "MoreUDP without UDP"},
		{"bad realm", func() Config { return Config{UDP: udp(), Secrets: secrets, Realm: "a\nb"} }, "realm"},
		{"IPv6 relay", func() Config { return Config{UDP: udp(), Secrets: secrets, RelayIP: netip.MustParseAddr("::1")} }, "relay IP"},
		{"multicast public IP", func() Config {
			return Config{UDP: udp(), Secrets: secrets, RelayIP: lo, PublicIP: netip.MustParseAddr("224.0.0.1")}
		}, "public IP"},
		{"empty port range", func() Config { return Config{UDP: udp(), Secrets: secrets, PortMin: 50000, PortMax: 40000} }, "port range"},
		{"negative TTL", func() Config { return Config{UDP: udp(), Secrets: secrets, CredentialTTL: -time.Second} }, "TTL"},
		{"bad prefix", func() Config { return Config{UDP: udp(), Secrets: secrets, AllowPeers: []netip.Prefix{{}}} }, "prefix"},
	}
	for _, tt := range tests {
		cfg := tt.cfg()
		s, err := New(cfg)
		if err == nil {
			s.Close()
			t.Errorf("%s: New succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New error = %q, want it to mention %q", tt.name, err, tt.want)
		}
		if cfg.UDP != nil {
			if _, err := cfg.UDP.WriteTo([]byte("x"), cfg.UDP.LocalAddr()); err == nil {
				t.Errorf("%s: New failed but left the socket open", tt.name)
			}
		}
	}
}

func TestEvenPort(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{})
	c := dialCreds(t, "udp", ts.creds(t, "alice", time.Now()))
	res, err := c.do(stun.MethodAllocate, requestedTransport(protoUDP), rawAttr{stun.AttrEvenPort, []byte{0x80}})
	if err != nil {
		t.Fatalf("Allocate with EVEN-PORT: %v", err)
	}
	var ra stun.XORMappedAddress
	if err := ra.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil || ra.Port%2 != 0 ||
		ra.Port < testPortMin || ra.Port > testPortMax {
		t.Errorf("relayed address %v, %v; want an even port in the range", ra, err)
	}
	if st := ts.Stats(); len(st.Allocations) != 1 {
		t.Errorf("%d allocations, want 1 (the probed ports are closed)", len(st.Allocations))
	}
}

func TestFrameSize(t *testing.T) {
	for _, tt := range []struct {
		h    []byte
		want int
		err  bool
	}{
		{[]byte{0x00, 0x01, 0x00, 0x00}, 20, false},
		{[]byte{0x00, 0x03, 0x00, 0x08}, 28, false},
		{[]byte{0x40, 0x00, 0x00, 0x05}, 12, false}, // 5 bytes, padded to 8
		{[]byte{0x4f, 0xff, 0x00, 0x08}, 12, false},
		{[]byte{0x7f, 0xff, 0xff, 0xff}, 4 + 65536, false},
		{[]byte{0x80, 0x00, 0x00, 0x00}, 0, true},
		{[]byte{0xc0, 0x00, 0x00, 0x00}, 0, true},
		{[]byte{0x00, 0x01}, 0, true},
	} {
		got, err := frameSize(tt.h)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("frameSize(% x) = %d, %v; want %d, error %v", tt.h, got, err, tt.want, tt.err)
		}
	}
}

// fakeConn is a net.Conn for feeding a streamConn; writes are discarded.
type fakeConn struct{}

func (fakeConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (fakeConn) Write(b []byte) (int, error)      { return len(b), nil }
func (fakeConn) Close() error                     { return nil }
func (fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478} }
func (fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 5000} }
func (fakeConn) SetDeadline(time.Time) error      { return nil }
func (fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (fakeConn) SetWriteDeadline(time.Time) error { return nil }

// seeds are requests a client sends, for the fuzz targets.
func seeds(t testing.TB, ts *testServer) [][]byte {
	creds := ts.creds(t, "fuzzer", time.Now())
	nonce := stun.NewNonce("abcdef")
	auth := []stun.Setter{stun.NewUsername(creds.Username), stun.NewRealm(DefaultRealm), nonce,
		stun.NewLongTermIntegrity(creds.Username, DefaultRealm, creds.Credential)}
	build := func(s ...stun.Setter) []byte {
		m, err := stun.Build(append(s, stun.Fingerprint)...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	peer := rawPeer{netip.MustParseAddrPort("[::ffff:127.0.0.1]:80")}
	return [][]byte{
		build(stun.TransactionID, stun.BindingRequest),
		build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), requestedTransport(protoUDP)),
		build(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			requestedTransport(protoUDP)}, auth...)...),
		build(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest),
			peer, rawPeer{netip.MustParseAddrPort("8.8.8.8:1")}}, auth...)...),
		build(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
			channelNumber(0x4000), peer}, auth...)...),
		build(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
			lifetimeAttr(0)}, auth...)...),
		build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peer, rawAttr{stun.AttrData, []byte("x")}),
		{0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0},
	}
}

// FuzzScreen: the gate never panics on a client's message, and whatever
// it answers is an error response to that very request.
func FuzzScreen(f *testing.F) {
	ts := newTestServer(f, Config{RequestRate: -1, AllowPeers: loopback}, serverOpts{})
	for _, b := range seeds(f, ts) {
		f.Add(b)
	}
	ft := fiveTuple{client: netip.MustParseAddrPort("127.0.0.9:5000"), server: netip.MustParseAddrPort("127.0.0.1:3478")}
	f.Fuzz(func(t *testing.T, b []byte) {
		var replies [][]byte
		out := outFunc(func(r []byte) error { replies = append(replies, bytes.Clone(r)); return nil })
		in := bytes.Clone(b)
		pass := ts.screen(b, origin{ft: ft, transport: "udp", out: out})
		if !bytes.Equal(in, b) {
			t.Fatalf("screen modified its input")
		}
		if pass && len(replies) > 0 {
			t.Fatalf("screen answered and passed the message on")
		}
		for _, r := range replies {
			req, res := &stun.Message{Raw: in}, &stun.Message{Raw: r}
			if req.Decode() != nil || res.Decode() != nil || res.TransactionID != req.TransactionID ||
				res.Type.Class != stun.ClassErrorResponse || res.Type.Method != req.Type.Method {
				t.Fatalf("reply % x is not an error response to % x", r, in)
			}
		}
	})
}

type outFunc func([]byte) error

func (f outFunc) write(b []byte) error { return f(b) }

// FuzzStreamFrames: a TURN stream hands pion whole frames only, whatever
// bytes arrive.
func FuzzStreamFrames(f *testing.F) {
	ts := newTestServer(f, Config{RequestRate: -1}, serverOpts{})
	var all []byte
	for _, b := range seeds(f, ts) {
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &streamConn{Conn: fakeConn{}, s: ts.Server, transport: "tcp", r: bufio.NewReader(bytes.NewReader(data)),
			ft: fiveTuple{client: netip.MustParseAddrPort("127.0.0.9:5000"), server: netip.MustParseAddrPort("127.0.0.1:3478"), stream: true}}
		c.once.Do(func() {}) // not registered with the server
		var got []byte
		buf := make([]byte, 1600)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if len(got) > len(data) {
			t.Fatalf("read %d bytes from %d", len(got), len(data))
		}
		for len(got) > 0 {
			n, err := frameSize(got)
			if err != nil || n > len(got) {
				t.Fatalf("passed on a partial or bad frame: % x", got)
			}
			got = got[n:]
		}
	})
}
