package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errCapacity   = errors.New("no relay port free")
	errPortRange  = errors.New("requested relay port outside the configured range")
	errNotUDP     = errors.New("only UDP relays are supported")
	errNotUDPAddr = errors.New("peer address is not a UDP address")
)

// relayPort marks a port of the range as a live relay socket of this
// server, readable without a lock on every datagram.
type relayPort struct{ live atomic.Bool }

func (s *Server) isRelayPort(port uint16) bool {
	if port < s.portMin || port > s.portMax {
		return false
	}
	return s.ports[port-s.portMin].live.Load()
}

// portAllocator is pion's RelayAddressGenerator: it binds relay sockets in
// the configured range on the relay IP and wraps them in relayConns.
type portAllocator struct{ s *Server }

func (g *portAllocator) Validate() error { return nil }

func (g *portAllocator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, errNotUDP
}

func (g *portAllocator) AllocatePacketConn(network string, requested int) (net.PacketConn, net.Addr, error) {
	s := g.s
	if network != "udp4" && network != "udp" {
		return nil, nil, errNotUDP
	}
	n := len(s.ports)
	try := func(i int) int { return int(s.portMin) + i }
	start := rand.IntN(n)
	attempts := n
	if requested != 0 {
		if requested < int(s.portMin) || requested > int(s.portMax) {
			return nil, nil, fmt.Errorf("%w: %d", errPortRange, requested)
		}
		start, attempts = requested-int(s.portMin), 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, errClosed
	}
	for k := range attempts {
		port := try((start + k) % n)
		if s.relays[uint16(port)] != nil {
			continue
		}
		c := &relayConn{s: s, port: uint16(port), toPion: make(chan pionDatagram, 16), done: make(chan struct{}),
			local: net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.relayIP, uint16(port)))}
		sock, err := s.poll.listen(netip.AddrPortFrom(s.relayIP, uint16(port)), relayBuffer, c.readable)
		if err != nil {
			continue // taken by someone else
		}
		c.sock = sock
		s.relays[c.port] = c
		s.ports[port-int(s.portMin)].live.Store(true)
		s.wg.Add(1)
		return c, net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.publicIP, uint16(port))), nil
	}
	return nil, nil, errCapacity
}

// maxRelayed is the largest datagram relayed from a peer, as in pion
// (its relay buffers are this size).
const maxRelayed = 1600

// relayConn is one allocation's relay socket, handed to pion as its
// net.PacketConn. It enforces what pion cannot: the per-datagram peer
// policy and the user's bandwidth, and counts bytes. The Server's poller
// reads it: datagrams from a peer bound to a channel go to the client as
// ChannelData right there when the client's socket is the poller's too
// (writes that cannot block); the rest reach pion's goroutine for the
// allocation through ReadFrom (Data indications, and channel data for
// clients on streams or other sockets, whose writes may block).
// ChannelData from clients arrives through relayChannelData.
type relayConn struct {
	sock   *rawSocket
	s      *Server
	port   uint16
	local  *net.UDPAddr
	alloc  atomic.Pointer[allocation] // set once pion reports the allocation
	toPion chan pionDatagram
	done   chan struct{} // closed by Close
	once   sync.Once
	exited sync.Once // pion's reader is done, or never started
}

// pionDatagram is a datagram from a peer for pion's reader.
type pionDatagram struct {
	b      []byte
	from   netip.AddrPort
	number uint16 // its channel, when bound
	bound  bool
}

// readable is called by the poller when the socket has a datagram.
func (c *relayConn) readable(sock *rawSocket, buf []byte) {
	n, peer, err := sock.recv(buf[4 : 4+maxRelayed])
	if err != nil {
		return
	}
	a := c.alloc.Load()
	if a == nil {
		return // no permission can exist yet
	}
	number, bound := a.byPeer(peer)
	if !bound && !a.permitted(peer.Addr()) {
		return // pion would drop it, logging each one
	}
	if !a.user.spend(n, time.Now()) {
		c.s.throttled(a)
		return
	}
	a.bytesIn.Add(uint64(n))
	if bound && a.direct {
		binary.BigEndian.PutUint16(buf[0:2], number)
		binary.BigEndian.PutUint16(buf[2:4], uint16(n))
		a.out.write(buf[:4+n])
		return
	}
	select {
	case c.toPion <- pionDatagram{b: slices.Clone(buf[4 : 4+n]), from: peer, number: number, bound: bound}:
	default: // pion's reader is behind: drop, as a full socket would
	}
}

// ReadFrom is pion's read of the relay socket: datagrams for Data
// indications. Channel data the poller could not write is written here, in
// the allocation's own goroutine.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		select {
		case d := <-c.toPion:
			a := c.alloc.Load()
			if d.bound && a != nil && a.out != nil {
				size := 4 + len(d.b)
				frame := make([]byte, size+3)
				binary.BigEndian.PutUint16(frame[0:2], d.number)
				binary.BigEndian.PutUint16(frame[2:4], uint16(len(d.b)))
				copy(frame[4:], d.b)
				if a.stream { // ChannelData is padded to 4 bytes on streams
					size = (size + 3) &^ 3
				}
				a.out.write(frame[:size])
				continue
			}
			return copy(p, d.b), net.UDPAddrFromAddrPort(d.from), nil
		case <-c.done:
			c.exited.Do(c.s.wg.Done)
			return 0, nil, net.ErrClosed
		}
	}
}

// WriteTo is pion's write to a peer (Send indications, and ChannelData
// before the relay knows the channel). A dropped datagram reports
// success, as the network would.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errNotUDPAddr
	}
	ap := ua.AddrPort()
	c.send(p, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), c.alloc.Load())
	return len(p), nil
}

// send relays a client's datagram to a peer with a permission, unless the
// peer policy or the user's bandwidth forbids it.
func (c *relayConn) send(p []byte, peer netip.AddrPort, a *allocation) {
	if r := c.s.pol.send(peer); r != "" {
		user := ""
		if a != nil {
			user = a.user.name
		}
		c.s.refuse(r, user, "peer", c.s.fmtAddrPort(peer))
		return
	}
	if a == nil {
		return
	}
	if !a.user.spend(len(p), time.Now()) {
		c.s.throttled(a)
		return
	}
	a.bytesOut.Add(uint64(len(p))) // before the peer can answer
	if err := c.sock.send(p, peer); err != nil {
		a.bytesOut.Add(-uint64(len(p)))
	}
}

func (c *relayConn) LocalAddr() net.Addr                { return c.local }
func (c *relayConn) SetDeadline(t time.Time) error      { return nil }
func (c *relayConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *relayConn) SetWriteDeadline(t time.Time) error { return nil }

// relayChannelData relays ChannelData from the client of ft to its peer,
// and reports whether it did; if not (no such allocation or channel, or a
// short frame), pion gets the message.
func (s *Server) relayChannelData(b []byte, ft fiveTuple) bool {
	a := (*s.fast.Load())[ft]
	if a == nil || a.conn == nil || len(b) < 4 {
		return false
	}
	size := int(binary.BigEndian.Uint16(b[2:4]))
	if 4+size > len(b) {
		return false
	}
	peer, ok := a.byNumber(binary.BigEndian.Uint16(b[0:2]))
	if !ok {
		return false
	}
	a.conn.send(b[4:4+size], peer, a)
	return true
}

// Close closes the socket and frees its port. It is safe to call more than
// once (pion closes relays again when it shuts down).
func (c *relayConn) Close() error {
	c.once.Do(func() {
		s := c.s
		c.sock.close(s.poll)
		s.mu.Lock()
		if s.relays[c.port] == c {
			delete(s.relays, c.port)
			s.ports[c.port-s.portMin].live.Store(false)
		}
		s.mu.Unlock()
		close(c.done)
		if c.alloc.Load() == nil {
			// No reader was started (pion probes ports for EVEN-PORT); a
			// reader that did start ends at once on done.
			c.exited.Do(s.wg.Done)
		}
	})
	return nil
}

// bucket is a token bucket. It is safe for concurrent use.
type bucket struct {
	mu          sync.Mutex
	rate, burst float64 // tokens per second, most tokens held
	tokens      float64
	last        time.Time
}

func newBucket(rate, burst float64, now time.Time) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

// take removes n tokens if there are that many, refilling first.
func (b *bucket) take(n float64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt*b.rate)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// full reports whether the bucket has refilled (so forgetting it changes
// nothing).
func (b *bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst
}

// userState is what the relay knows about one user.
type userState struct {
	name      string
	bw        *bucket // nil: no bandwidth bound
	throttled atomic.Uint64
	// guarded by Server.mu
	live, pending       int
	closedIn, closedOut uint64
	lastActive          time.Time
}

func (u *userState) spend(n int, now time.Time) bool {
	return u.bw == nil || u.bw.take(float64(n), now)
}

// userLocked returns the user's state, creating it. s.mu must be held.
func (s *Server) userLocked(name string, now time.Time) *userState {
	u := s.users[name]
	if u == nil {
		u = &userState{name: name}
		if s.userRate > 0 {
			u.bw = newBucket(float64(s.userRate), float64(s.userRate), now)
		}
		s.users[name] = u
	}
	u.lastActive = now
	return u
}

func (s *Server) throttled(a *allocation) {
	a.user.throttled.Add(1)
	s.refuse(ReasonBandwidth, a.user.name)
}
