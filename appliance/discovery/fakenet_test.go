package discovery

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeNet is an in-memory link for the responder's unit tests: a multicast
// reaches every member (the sender too, like IP_MULTICAST_LOOP), a unicast
// the one address it names. Used inside a synctest bubble, so time only
// passes when every goroutine waits.
type fakeNet struct {
	mu    sync.Mutex
	conns []*fakeConn
}

// fakeIface is the one interface of the fake link. No real interface has
// its index, so nothing is learnt about it from the machine.
var fakeIface = net.Interface{Index: 999999, MTU: 1500, Name: "fake0", Flags: net.FlagUp | net.FlagMulticast}

type fakeConn struct {
	net    *fakeNet
	addr   netip.AddrPort
	member bool // joined to the group (bound to 5353)
	ch     chan packet
	closed bool
}

// join attaches a socket with this address ("10.0.0.1:5353"); sockets on
// port 5353 receive multicast.
func (n *fakeNet) join(addr string) *fakeConn {
	ap := netip.MustParseAddrPort(addr)
	c := &fakeConn{net: n, addr: ap, member: ap.Port() == mdnsPort, ch: make(chan packet, 512)}
	n.mu.Lock()
	n.conns = append(n.conns, c)
	n.mu.Unlock()
	return c
}

func (c *fakeConn) Packets() <-chan packet { return c.ch }

func (c *fakeConn) Multicast(b []byte, ifIndex int) error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, o := range c.net.conns {
		if o.member {
			o.deliverLocked(packet{data: slices.Clone(b), src: c.addr, ifIndex: fakeIface.Index})
		}
	}
	return nil
}

func (c *fakeConn) Unicast(b []byte, dst netip.AddrPort, ifIndex int) error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, o := range c.net.conns {
		if o.addr == dst {
			o.deliverLocked(packet{data: slices.Clone(b), src: c.addr, ifIndex: fakeIface.Index, unicast: true})
		}
	}
	return nil
}

func (c *fakeConn) deliverLocked(p packet) {
	if c.closed {
		return
	}
	select {
	case c.ch <- p:
	default: // a full socket buffer drops, as UDP does
	}
}

func (c *fakeConn) Close() error {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.ch)
	}
	return nil
}

// drain returns the packets received so far, parsed.
func (c *fakeConn) drain() []received {
	var out []received
	for {
		select {
		case p, ok := <-c.ch:
			if !ok {
				return out
			}
			if m, ok := parse(p.data); ok {
				out = append(out, received{msg: m, src: p.src})
			}
		default:
			return out
		}
	}
}

type received struct {
	msg *dns.Msg
	src netip.AddrPort
}

// send packs m and sends it from c, multicast or to dst.
func (c *fakeConn) send(t *testing.T, m *dns.Msg, dst ...netip.AddrPort) {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	if len(dst) > 0 {
		_ = c.Unicast(b, dst[0], 0)
		return
	}
	_ = c.Multicast(b, 0)
}

// fakePublisher stands in for zeroconf and records what is published.
type fakePublisher struct {
	mu   sync.Mutex
	live map[string]publication
	log  []string // "+name" on publish, "-name" on stop
}

func (f *fakePublisher) publish(p publication) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil {
		f.live = map[string]publication{}
	}
	f.live[p.name] = p
	f.log = append(f.log, "+"+p.name)
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.live, p.name)
		f.log = append(f.log, "-"+p.name)
	}, nil
}

func (f *fakePublisher) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// testAnnouncer is an Announcer on the fake link with its own address.
type testAnnouncer struct {
	*Announcer
	pub  *fakePublisher
	done chan error
	mu   sync.Mutex
	addr []netip.Addr
}

func (ta *testAnnouncer) setAddrs(addrs ...string) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.addr = nil
	for _, a := range addrs {
		ta.addr = append(ta.addr, netip.MustParseAddr(a))
	}
}

// start runs an Announcer named name at addr on n until the test ends.
func (n *fakeNet) start(t *testing.T, name, addr string, edit ...func(*Config)) *testAnnouncer {
	t.Helper()
	ta := &testAnnouncer{pub: &fakePublisher{}, done: make(chan error, 1)}
	ta.setAddrs(addr)
	cfg := Config{
		Name: name, Version: "test", Port: 8443, Interfaces: []net.Interface{fakeIface}, PollInterval: time.Second,
		Addrs: func() ([]netip.Addr, error) {
			ta.mu.Lock()
			defer ta.mu.Unlock()
			return slices.Clone(ta.addr), nil
		},
		listen: func([]net.Interface) (transport, error) {
			return n.join(netip.AddrPortFrom(netip.MustParseAddr(addr), mdnsPort).String()), nil
		},
		publish: ta.pub.publish,
	}
	for _, e := range edit {
		e(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ta.Announcer = a
	go func() { ta.done <- a.Run(context.Background()) }()
	t.Cleanup(func() { a.Close() })
	return ta
}
