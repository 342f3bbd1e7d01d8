package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mdnsPort is the mDNS UDP port; maxPacket bounds what is read (RFC 6762
// §17 allows up to 9000 bytes; a jumbo frame may carry more).
const (
	mdnsPort  = 5353
	maxPacket = 65536
)

// The mDNS multicast groups.
var (
	groupV4 = netip.MustParseAddr("224.0.0.251")
	groupV6 = netip.MustParseAddr("ff02::fb")
)

// packet is one received datagram.
type packet struct {
	data    []byte
	src     netip.AddrPort
	ifIndex int  // the interface it arrived on; 0 when unknown
	unicast bool // sent to one of our addresses, not to the group
}

// transport is what the responder sends and receives mDNS messages
// through: real sockets, or an in-memory network in tests.
type transport interface {
	// Packets delivers received datagrams; it is closed by Close.
	Packets() <-chan packet
	// Multicast sends b to the mDNS groups on the interface with index
	// ifIndex, or on every interface when ifIndex is 0.
	Multicast(b []byte, ifIndex int) error
	// Unicast sends b to dst, out of interface ifIndex when not 0.
	Unicast(b []byte, dst netip.AddrPort, ifIndex int) error
	Close() error
}

// udpTransport is a transport on IPv4 and IPv6 UDP sockets.
type udpTransport struct {
	v4      *ipv4.PacketConn
	v6      *ipv6.PacketConn
	ifaces  []net.Interface
	packets chan packet
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// listenMDNS opens the responder's sockets: port 5353, shared with other
// mDNS stacks, joined to the mDNS groups on ifaces.
func listenMDNS(ifaces []net.Interface) (transport, error) {
	return listenUDP(ifaces, mdnsPort)
}

// listenUDP opens UDP sockets on port (0: an ephemeral port, for one-shot
// queries, joining no group). One family failing is fine (a box without
// IPv6); both failing is an error.
func listenUDP(ifaces []net.Interface, port int) (*udpTransport, error) {
	if len(ifaces) == 0 {
		return nil, ErrNoInterface
	}
	join := port == mdnsPort
	lc := net.ListenConfig{}
	if port != 0 {
		lc.Control = shareAddr
	}
	t := &udpTransport{ifaces: ifaces, packets: make(chan packet, 64), done: make(chan struct{})}
	var errs []error
	if c, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port))); err != nil {
		errs = append(errs, fmt.Errorf("ipv4: %w", err))
	} else if p, err := setup4(ipv4.NewPacketConn(c), ifaces, join); err != nil {
		c.Close()
		errs = append(errs, fmt.Errorf("ipv4: %w", err))
	} else {
		t.v4 = p
	}
	if c, err := lc.ListenPacket(context.Background(), "udp6", net.JoinHostPort("::", strconv.Itoa(port))); err != nil {
		errs = append(errs, fmt.Errorf("ipv6: %w", err))
	} else if p, err := setup6(ipv6.NewPacketConn(c), ifaces, join); err != nil {
		c.Close()
		errs = append(errs, fmt.Errorf("ipv6: %w", err))
	} else {
		t.v6 = p
	}
	if t.v4 == nil && t.v6 == nil {
		return nil, fmt.Errorf("open mdns sockets on port %d: %w", port, errors.Join(errs...))
	}
	if t.v4 != nil {
		t.wg.Add(1)
		go t.read(func(b []byte) (int, int, net.IP, net.Addr, error) {
			n, cm, src, err := t.v4.ReadFrom(b)
			if cm != nil {
				return n, cm.IfIndex, cm.Dst, src, err
			}
			return n, 0, nil, src, err
		})
	}
	if t.v6 != nil {
		t.wg.Add(1)
		go t.read(func(b []byte) (int, int, net.IP, net.Addr, error) {
			n, cm, src, err := t.v6.ReadFrom(b)
			if cm != nil {
				return n, cm.IfIndex, cm.Dst, src, err
			}
			return n, 0, nil, src, err
		})
	}
	return t, nil
}

func setup4(p *ipv4.PacketConn, ifaces []net.Interface, join bool) (*ipv4.PacketConn, error) {
	if err := p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		return nil, fmt.Errorf("ask for the receiving interface: %w", err)
	}
	// RFC 6762 §11: sent with IP TTL 255, so receivers can tell on-link.
	_ = p.SetMulticastTTL(255)
	_ = p.SetTTL(255)
	_ = p.SetMulticastLoopback(true) // others on this box hear us
	if !join {
		return p, nil
	}
	var errs []error
	for i := range ifaces {
		if err := p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: groupV4.AsSlice()}); err != nil {
			errs = append(errs, fmt.Errorf("join %v on %s: %w", groupV4, ifaces[i].Name, err))
		}
	}
	if len(errs) == len(ifaces) {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func setup6(p *ipv6.PacketConn, ifaces []net.Interface, join bool) (*ipv6.PacketConn, error) {
	if err := p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
		return nil, fmt.Errorf("ask for the receiving interface: %w", err)
	}
	_ = p.SetMulticastHopLimit(255)
	_ = p.SetHopLimit(255)
	_ = p.SetMulticastLoopback(true)
	if !join {
		return p, nil
	}
	var errs []error
	for i := range ifaces {
		if err := p.JoinGroup(&ifaces[i], &net.UDPAddr{IP: groupV6.AsSlice()}); err != nil {
			errs = append(errs, fmt.Errorf("join %v on %s: %w", groupV6, ifaces[i].Name, err))
		}
	}
	if len(errs) == len(ifaces) {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func (t *udpTransport) read(readFrom func([]byte) (n, ifIndex int, dst net.IP, src net.Addr, err error)) {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, ifIndex, dst, src, err := readFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || isClosed(t.done) {
				return
			}
			continue // a transient error on a datagram socket
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		p := packet{data: slices.Clone(buf[:n]), src: ap, ifIndex: ifIndex, unicast: dst != nil && !dst.IsMulticast()}
		select {
		case t.packets <- p:
		case <-t.done:
			return
		}
	}
}

func (t *udpTransport) Packets() <-chan packet { return t.packets }

func (t *udpTransport) Multicast(b []byte, ifIndex int) error {
	var errs []error
	for _, ifi := range t.ifaces {
		if ifIndex != 0 && ifi.Index != ifIndex {
			continue
		}
		if t.v4 != nil {
			if _, err := t.v4.WriteTo(b, &ipv4.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: groupV4.AsSlice(), Port: mdnsPort}); err != nil {
				errs = append(errs, fmt.Errorf("send to %v on %s: %w", groupV4, ifi.Name, err))
			}
		}
		if t.v6 != nil {
			if _, err := t.v6.WriteTo(b, &ipv6.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: groupV6.AsSlice(), Port: mdnsPort, Zone: ifi.Name}); err != nil {
				errs = append(errs, fmt.Errorf("send to %v on %s: %w", groupV6, ifi.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (t *udpTransport) Unicast(b []byte, dst netip.AddrPort, ifIndex int) error {
	ua := net.UDPAddrFromAddrPort(dst)
	var err error
	switch {
	case dst.Addr().Is4() && t.v4 != nil:
		var cm *ipv4.ControlMessage
		if ifIndex != 0 {
			cm = &ipv4.ControlMessage{IfIndex: ifIndex}
		}
		_, err = t.v4.WriteTo(b, cm, ua)
	case dst.Addr().Is6() && t.v6 != nil:
		var cm *ipv6.ControlMessage
		if ifIndex != 0 {
			cm = &ipv6.ControlMessage{IfIndex: ifIndex}
		}
		_, err = t.v6.WriteTo(b, cm, ua)
	default:
		err = errors.New("no socket of that address family")
	}
	if err != nil {
		return fmt.Errorf("send to %v: %w", dst, err)
	}
	return nil
}

// Close closes the sockets and waits for the readers. It is idempotent.
func (t *udpTransport) Close() error {
	t.once.Do(func() {
		close(t.done)
		if t.v4 != nil {
			t.v4.Close()
		}
		if t.v6 != nil {
			t.v6.Close()
		}
		t.wg.Wait()
		close(t.packets)
	})
	return nil
}
