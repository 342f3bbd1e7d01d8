package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// udpOut writes to a client over a UDP socket.
type udpOut struct {
	pc net.PacketConn
	uc *net.UDPConn // pc, when it is one: writes without allocating
	to netip.AddrPort
}

func (o udpOut) write(b []byte) error {
	var err error
	if o.uc != nil {
		_, err = o.uc.WriteToUDPAddrPort(b, o.to)
	} else {
		_, err = o.pc.WriteTo(b, net.UDPAddrFromAddrPort(o.to))
	}
	return err
}

// rawOut writes to a client over a UDP socket of the poller, without
// blocking.
type rawOut struct {
	sock *rawSocket
	to   netip.AddrPort
}

func (o rawOut) write(b []byte) error { return o.sock.send(b, o.to) }

// rawListener is a UDP TURN socket served by the poller: taken out of Go's
// netpoller, so that one goroutine carries every datagram between clients
// and relays. ChannelData is relayed right there; everything else goes to
// pion through ReadFrom, which screens it first (the gate's hooks may
// block, the poller must not).
type rawListener struct {
	s      *Server
	sock   *rawSocket
	local  net.Addr
	ap     netip.AddrPort
	toPion chan datagram
	done   chan struct{}
	once   sync.Once
	exited sync.Once
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// adoptUDP moves uc's socket to the poller and closes uc.
func (s *Server) adoptUDP(uc *net.UDPConn) (*rawListener, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup TURN socket: %w", derr)
	}
	l := &rawListener{s: s, local: uc.LocalAddr(), ap: addrPort(uc.LocalAddr()),
		toPion: make(chan datagram, 256), done: make(chan struct{})}
	if l.sock, err = s.poll.adopt(fd, l.readable); err != nil {
		unix.Close(fd)
		return nil, err
	}
	uc.Close() // the socket lives on in fd, outside Go's netpoller
	return l, nil
}

// maxReadsPerWake bounds the datagrams read from one listener per poller
// round, so that relays get their turn.
const maxReadsPerWake = 16

func (l *rawListener) readable(sock *rawSocket, buf []byte) {
	for range maxReadsPerWake {
		n, from, err := sock.recv(buf)
		if err != nil {
			return
		}
		ft := fiveTuple{client: from, server: l.ap}
		if n >= 4 && buf[0]>>6 == 1 && l.s.relayChannelData(buf[:n], ft) {
			continue
		}
		select {
		case l.toPion <- datagram{b: slices.Clone(buf[:n]), from: from}:
		default: // pion is behind: drop, as a full socket would
		}
	}
}

func (l *rawListener) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		select {
		case d := <-l.toPion:
			o := origin{ft: fiveTuple{client: d.from, server: l.ap}, transport: "udp", out: rawOut{l.sock, d.from}}
			if len(d.b) >= 20 && d.b[0]&0xc0 == 0 && !l.s.screen(d.b, o) {
				continue
			}
			return copy(p, d.b), net.UDPAddrFromAddrPort(d.from), nil
		case <-l.done:
			l.exited.Do(l.s.wg.Done)
			return 0, nil, net.ErrClosed
		}
	}
}

func (l *rawListener) WriteTo(p []byte, addr net.Addr) (int, error) {
	if err := l.sock.send(p, addrPort(addr)); err != nil && !errors.Is(err, unix.EAGAIN) {
		return 0, err
	}
	return len(p), nil
}

func (l *rawListener) Close() error {
	l.once.Do(func() {
		l.sock.close(l.s.poll)
		close(l.done)
	})
	return nil
}

func (l *rawListener) LocalAddr() net.Addr                { return l.local }
func (l *rawListener) SetDeadline(t time.Time) error      { return nil }
func (l *rawListener) SetReadDeadline(t time.Time) error  { return nil }
func (l *rawListener) SetWriteDeadline(t time.Time) error { return nil }

// packetGate hands pion a UDP socket's datagrams after screen, and relays
// ChannelData itself (see relayChannelData).
type packetGate struct {
	net.PacketConn
	uc    *net.UDPConn // PacketConn, when it is one
	s     *Server
	local netip.AddrPort
	once  sync.Once
}

func newPacketGate(s *Server, pc net.PacketConn) *packetGate {
	g := &packetGate{PacketConn: pc, s: s, local: addrPort(pc.LocalAddr())}
	g.uc, _ = pc.(*net.UDPConn)
	return g
}

func (g *packetGate) ReadFrom(p []byte) (int, net.Addr, error) {
	delay := 5 * time.Millisecond
	for {
		n, ap, err := g.read(p)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !g.s.isClosed() {
				// pion stops serving on any error; only closing should.
				g.s.log.Warn("read TURN datagram; retrying", "err", err)
				time.Sleep(delay)
				delay = min(2*delay, time.Second)
				continue
			}
			g.once.Do(g.s.wg.Done)
			return n, nil, err
		}
		ft := fiveTuple{client: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), server: g.local}
		if n >= 4 && p[0]>>6 == 1 && g.s.relayChannelData(p[:n], ft) {
			continue
		}
		if n < 20 || p[0]&0xc0 != 0 ||
			g.s.screen(p[:n], origin{ft: ft, transport: "udp", out: udpOut{pc: g.PacketConn, uc: g.uc, to: ap}}) {
			return n, net.UDPAddrFromAddrPort(ap), nil
		}
	}
}

func (g *packetGate) read(p []byte) (int, netip.AddrPort, error) {
	if g.uc != nil {
		return g.uc.ReadFromUDPAddrPort(p)
	}
	n, addr, err := g.PacketConn.ReadFrom(p)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	return n, addrPort(addr), nil
}
