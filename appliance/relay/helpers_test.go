package relay

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Test relay ports: a band the allocator picks from at random, skipping
// ports something else holds.
const testPortMin, testPortMax = 42000, 42999

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// testSecrets is a rotatable secret store for the Secrets hook.
type testSecrets struct {
	mu       sync.Mutex
	current  []byte
	previous [][]byte
}

func (ts *testSecrets) get() ([]byte, [][]byte) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.current, ts.previous
}

func (ts *testSecrets) rotate(next []byte, keep bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.previous = nil
	if keep {
		ts.previous = [][]byte{ts.current}
	}
	ts.current = next
}

// testServer is a Server on loopback with its listeners' addresses.
type testServer struct {
	*Server
	secrets *testSecrets
	udp     string // host:port
	tcp     string
	tls     string
	logs    *logBuffer
}

type serverOpts struct {
	tcp, tls bool
	moreUDP  int
	// generic hides the UDP socket's type, so it is served through
	// packetGate instead of the poller.
	generic bool
	// udp is the address of the UDP socket ("udp" network); default
	// 127.0.0.1:0.
	udp string
}

// plainPacketConn is a net.PacketConn that is not a *net.UDPConn.
type plainPacketConn struct{ net.PacketConn }

// newTestServer starts a Server on 127.0.0.1 with cfg's listeners, secret
// hook, logger and (when unset) relay IP 127.0.0.1 and the test port band
// filled in. Cleanup closes it and checks that no goroutine leaked.
func newTestServer(t testing.TB, cfg Config, o serverOpts) *testServer {
	t.Helper()
	ts := &testServer{secrets: &testSecrets{current: []byte("test secret one")}, logs: &logBuffer{}}
	if o.moreUDP > 0 {
		pcs, err := ListenUDPReusePort("127.0.0.1:0", 1+o.moreUDP)
		if err != nil {
			t.Fatal(err)
		}
		cfg.UDP, cfg.MoreUDP = pcs[0], pcs[1:]
	} else {
		pc, err := net.ListenPacket("udp", cmp.Or(o.udp, "127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.UDP = pc
	}
	ts.udp = cfg.UDP.LocalAddr().String()
	if o.generic {
		cfg.UDP = plainPacketConn{cfg.UDP}
	}
	if o.tcp {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.TCP, ts.tcp = l, l.Addr().String()
	}
	if o.tls {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, ts.tls = tls.NewListener(l, serverTLS(t)), l.Addr().String()
	}
	if cfg.Secrets == nil {
		cfg.Secrets = ts.secrets.get
	}
	if !cfg.RelayIP.IsValid() {
		cfg.RelayIP = netip.MustParseAddr("127.0.0.1")
	}
	if cfg.PortMin == 0 {
		cfg.PortMin, cfg.PortMax = testPortMin, testPortMax
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.Server = s
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		checkGoroutines(t)
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs)
		}
	})
	return ts
}

// creds mints credentials through the public API.
func (ts *testServer) creds(t testing.TB, user string, now time.Time) Credentials {
	t.Helper()
	c, err := ts.Credentials("127.0.0.1", user, now)
	if err != nil {
		t.Fatalf("Credentials(%q): %v", user, err)
	}
	return c
}

// turnAddr returns host:port of the credentials' URL for transport
// ("udp", "tcp", or "tls" for turns:).
func turnAddr(t testing.TB, c Credentials, transport string) string {
	t.Helper()
	scheme, tr := "turn", transport
	if transport == "tls" {
		scheme, tr = "turns", "tcp"
	}
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("credential URL %q: %v", raw, err)
		}
		if u.Scheme == scheme && u.Query().Get("transport") == tr {
			return u.Opaque
		}
	}
	t.Fatalf("no %s URL for transport %s in %v", scheme, tr, c.URLs)
	return ""
}

// logBuffer collects log output safely.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkGoroutines fails t if goroutines of pion or of this package are
// still running, after giving them a moment to finish.
func checkGoroutines(t testing.TB) {
	t.Helper()
	var leaked []string
	for deadline := time.Now().Add(3 * time.Second); ; {
		leaked = leaked[:0]
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "checkGoroutines") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "pion/") {
				continue
			}
			if strings.Contains(g, "github.com/pion/") || strings.Contains(g, "appliance/relay.(") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
}

// serverTLS returns a TLS config with a fresh self-signed certificate for
// 127.0.0.1.
func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// rawClient speaks TURN message by message, to see every error code.
type rawClient struct {
	t        testing.TB
	conn     net.Conn
	stream   bool
	username string
	password string
	realm    string
	nonce    stun.Nonce
	r        io.Reader
}

// dialRaw connects a raw client over "udp", "tcp" or "tls".
func dialRaw(t testing.TB, transport, addr, username, password string) *rawClient {
	t.Helper()
	var (
		c   net.Conn
		err error
	)
	switch transport {
	case "udp":
		c, err = net.Dial("udp4", addr)
	case "tcp":
		c, err = net.Dial("tcp4", addr)
	case "tls":
		c, err = tls.Dial("tcp4", addr, &tls.Config{InsecureSkipVerify: true})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, stream: transport != "udp", username: username, password: password,
		realm: DefaultRealm, r: c}
}

func dialCreds(t testing.TB, transport string, c Credentials) *rawClient {
	t.Helper()
	return dialRaw(t, transport, turnAddr(t, c, transport), c.Username, c.Credential)
}

// turnError is an error response's code.
type turnError struct {
	code   int
	method stun.Method
}

func (e *turnError) Error() string { return fmt.Sprintf("%s error %d", e.method, e.code) }

func codeOf(err error) int {
	var te *turnError
	if errors.As(err, &te) {
		return te.code
	}
	return 0
}

// readMsg reads one datagram or stream frame.
func (c *rawClient) readMsg(timeout time.Duration) ([]byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	if !c.stream {
		b := make([]byte, 70000)
		n, err := c.conn.Read(b)
		return b[:n], err
	}
	h := make([]byte, 4)
	if _, err := io.ReadFull(c.r, h); err != nil {
		return nil, err
	}
	n, err := frameSize(h)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	copy(b, h)
	_, err = io.ReadFull(c.r, b[4:])
	return b, err
}

// roundTrip sends a request and returns the response with its transaction
// ID, skipping indications and ChannelData.
func (c *rawClient) roundTrip(req *stun.Message) (*stun.Message, error) {
	if _, err := c.conn.Write(req.Raw); err != nil {
		return nil, err
	}
	for {
		b, err := c.readMsg(3 * time.Second)
		if err != nil {
			return nil, err
		}
		if !stun.IsMessage(b) {
			continue
		}
		res := &stun.Message{Raw: b}
		if err := res.Decode(); err != nil {
			return nil, err
		}
		if res.TransactionID == req.TransactionID {
			return res, nil
		}
	}
}

// do sends an authenticated request, getting a nonce first if needed, and
// returns the success response or a *turnError.
func (c *rawClient) do(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for try := 0; try < 3; try++ {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != nil {
			setters = append(setters, stun.NewUsername(c.username), stun.NewRealm(c.realm), c.nonce,
				stun.NewLongTermIntegrity(c.username, c.realm, c.password))
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return nil, err
		}
		res, err := c.roundTrip(req)
		if err != nil {
			return nil, err
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			return res, nil
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(res); err != nil {
			return nil, &turnError{code: -1, method: method}
		}
		var nonce stun.Nonce
		fresh := nonce.GetFrom(res) == nil && !bytes.Equal(nonce, c.nonce)
		if (code.Code == stun.CodeUnauthorized || code.Code == stun.CodeStaleNonce) && fresh {
			c.nonce = nonce
			var realm stun.Realm
			if realm.GetFrom(res) == nil {
				c.realm = realm.String()
			}
			continue
		}
		return nil, &turnError{code: int(code.Code), method: method}
	}
	return nil, &turnError{code: -2, method: method}
}

func (c *rawClient) allocate() (netip.AddrPort, error) {
	res, err := c.do(stun.MethodAllocate, requestedTransport(protoUDP))
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ra stun.XORMappedAddress
	if err := ra.GetFromAs(res, stun.AttrXORRelayedAddress); err != nil {
		return netip.AddrPort{}, err
	}
	a, _ := netip.AddrFromSlice(ra.IP)
	return netip.AddrPortFrom(a.Unmap(), uint16(ra.Port)), nil
}

func (c *rawClient) refresh(lifetime time.Duration) error {
	_, err := c.do(stun.MethodRefresh, lifetimeAttr(lifetime))
	return err
}

func (c *rawClient) createPermission(peers ...netip.AddrPort) error {
	var attrs []stun.Setter
	for _, p := range peers {
		attrs = append(attrs, rawPeer{p})
	}
	_, err := c.do(stun.MethodCreatePermission, attrs...)
	return err
}

func (c *rawClient) channelBind(ch uint16, peer netip.AddrPort) error {
	_, err := c.do(stun.MethodChannelBind, channelNumber(ch), rawPeer{peer})
	return err
}

// sendChannel sends ChannelData.
func (c *rawClient) sendChannel(ch uint16, data []byte) {
	c.t.Helper()
	b := make([]byte, 4, 4+len(data)+3)
	binary.BigEndian.PutUint16(b, ch)
	binary.BigEndian.PutUint16(b[2:], uint16(len(data)))
	b = append(b, data...)
	if c.stream {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// sendIndication sends data to peer in a Send indication.
func (c *rawClient) sendIndication(peer netip.AddrPort, data []byte) {
	c.t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), rawPeer{peer},
		rawAttr{stun.AttrData, data}, stun.Fingerprint)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(m.Raw); err != nil {
		c.t.Fatal(err)
	}
}

// receive returns the next relayed payload (ChannelData or a Data
// indication), or an error after timeout.
func (c *rawClient) receive(timeout time.Duration) ([]byte, error) {
	b, _, err := c.receiveOn(timeout)
	return b, err
}

// receiveOn is receive, also returning the channel number (0 for a Data
// indication).
func (c *rawClient) receiveOn(timeout time.Duration) ([]byte, uint16, error) {
	for {
		b, err := c.readMsg(timeout)
		if err != nil {
			return nil, 0, err
		}
		if len(b) >= 4 && b[0]>>6 == 1 {
			n := int(binary.BigEndian.Uint16(b[2:4]))
			if 4+n > len(b) || c.stream && len(b)%4 != 0 {
				return nil, 0, fmt.Errorf("bad ChannelData frame % x", b)
			}
			return b[4 : 4+n], binary.BigEndian.Uint16(b[0:2]), nil
		}
		m := &stun.Message{Raw: b}
		if m.Decode() == nil && m.Type == stun.NewType(stun.MethodData, stun.ClassIndication) {
			data, err := m.Get(stun.AttrData)
			return data, 0, err
		}
	}
}

// rawAttr adds an attribute as given.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

func requestedTransport(proto byte) stun.Setter {
	return rawAttr{stun.AttrRequestedTransport, []byte{proto, 0, 0, 0}}
}

func lifetimeAttr(d time.Duration) stun.Setter {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(d/time.Second))
	return rawAttr{stun.AttrLifetime, v}
}

func channelNumber(ch uint16) stun.Setter {
	return rawAttr{stun.AttrChannelNumber, []byte{byte(ch >> 8), byte(ch), 0, 0}}
}

// rawPeer is an XOR-PEER-ADDRESS in exactly the family of its address:
// ::ffff:127.0.0.1 goes on the wire as IPv6, as an attacker would send it.
type rawPeer struct{ ap netip.AddrPort }

func (p rawPeer) AddTo(m *stun.Message) error {
	const cookie = 0x2112A442
	var ip []byte
	family := byte(1)
	if a := p.ap.Addr(); a.Is4() {
		b := a.As4()
		ip = b[:]
	} else {
		b := a.As16()
		ip, family = b[:], 2
	}
	xor := make([]byte, 16)
	binary.BigEndian.PutUint32(xor, cookie)
	copy(xor[4:], m.TransactionID[:])
	v := make([]byte, 4+len(ip))
	v[1] = family
	binary.BigEndian.PutUint16(v[2:], p.ap.Port()^(cookie>>16))
	for i := range ip {
		v[4+i] = ip[i] ^ xor[i]
	}
	m.Add(stun.AttrXORPeerAddress, v)
	return nil
}

// udpPeer is a UDP socket on loopback that can echo.
func udpPeer(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func peerAddr(c net.PacketConn) netip.AddrPort { return addrPort(c.LocalAddr()) }

// readPeer reads one datagram with a timeout; ok is false on timeout.
func readPeer(t testing.TB, c *net.UDPConn, timeout time.Duration) ([]byte, netip.AddrPort, bool) {
	t.Helper()
	b := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, netip.AddrPort{}, false
		}
		t.Fatal(err)
	}
	return b[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), true
}
