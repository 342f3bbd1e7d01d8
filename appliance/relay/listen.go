package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenUDPReusePort opens n UDP sockets on addr with SO_REUSEPORT, for
// Config.UDP and Config.MoreUDP: the kernel spreads clients over them (each
// client always to the same socket) and each is served by its own
// goroutine. n < 1 means one per CPU. With port 0, all share the port the
// first one got.
func ListenUDPReusePort(addr string, n int) ([]net.PacketConn, error) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var conns []net.PacketConn
	fail := func(err error) ([]net.PacketConn, error) {
		for _, c := range conns {
			c.Close()
		}
		return nil, fmt.Errorf("listen UDP %s with SO_REUSEPORT: %w", addr, err)
	}
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, pc)
		addr = pc.LocalAddr().String() // the port the first socket got
	}
	return conns, nil
}

// LANAddr returns the IPv4 address of the interface holding the default
// route: the address a relay on the home LAN advertises. It asks the
// kernel which source address it would use toward a documentation address
// (connecting a UDP socket sends nothing), and falls back to the first
// private address of an interface that is up.
func LANAddr() (netip.Addr, error) {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		a := addrPort(c.LocalAddr()).Addr()
		c.Close()
		if a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
			return a, nil
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("detect LAN address: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ia := range addrs {
			if n, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap().Is4() && a.Unmap().IsPrivate() {
					return a.Unmap(), nil
				}
			}
		}
	}
	return netip.Addr{}, errors.New("detect LAN address: no default route and no private IPv4 address on an interface")
}
