package relay

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller reads every relay socket of a Server in one goroutine, as coturn
// does with its relay threads: one epoll_wait wakes it for all sockets with
// datagrams, instead of one goroutine per socket woken through Go's
// netpoller (with its thread hand-offs for every datagram).
type poller struct {
	epfd int
	// file is epfd in Go's netpoller: it is readable when a relay socket
	// has datagrams, so the poller goroutine waits there, like any network
	// read, rather than blocking a thread in epoll_wait.
	file    *os.File
	stopped atomic.Bool // set before file is closed: the wait's error is expected then
	mu      sync.Mutex
	slots   []*rawSocket // index: the epoll event's Fd field
	gens    []int32      // slot generation: the event's Pad field
	free    []int32
}

// rawSocket is a non-blocking UDP socket outside Go's netpoller, read by
// the poller. mu keeps its fd from being closed (and reused) while it is
// read or written.
type rawSocket struct {
	mu     sync.RWMutex
	fd     int
	inet6  bool // an AF_INET6 socket (IPv4 peers as mapped addresses)
	closed bool
	slot   int32
	ready  func(s *rawSocket, buf []byte) // called by the poller when readable
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "relay-epoll")}, nil
}

// run serves the sockets until stop. buf is the datagram buffer handed to
// each socket's ready function.
func (p *poller) run(buf []byte) error {
	rc, err := p.file.SyscallConn()
	if err != nil {
		return err
	}
	events := make([]unix.EpollEvent, 64)
	for {
		var (
			n    int
			werr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if errors.Is(werr, unix.EINTR) {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil // false: wait until readable
		})
		if errors.Is(err, os.ErrClosed) || (err != nil && p.stopped.Load()) {
			return nil
		}
		if err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("epoll wait: %w", err)
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			var s *rawSocket
			if int(ev.Fd) < len(p.slots) && p.gens[ev.Fd] == ev.Pad {
				s = p.slots[ev.Fd]
			}
			p.mu.Unlock()
			if s != nil {
				s.ready(s, buf)
			}
		}
	}
}

// stop makes run return, and closes the epoll descriptor.
func (p *poller) stop() {
	p.stopped.Store(true)
	p.file.Close()
}

// listen opens a UDP socket on ap, watched by the poller.
func (p *poller) listen(ap netip.AddrPort, buffer int, ready func(*rawSocket, []byte)) (*rawSocket, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buffer)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buffer)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	s, err := p.add(fd, false, ready)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

// adopt watches a socket Hearth did not open here: a UDP listener taken out
// of Go's netpoller. It must be non-blocking.
func (p *poller) adopt(fd int, ready func(*rawSocket, []byte)) (*rawSocket, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	_, inet6 := sa.(*unix.SockaddrInet6)
	return p.add(fd, inet6, ready)
}

func (p *poller) add(fd int, inet6 bool, ready func(*rawSocket, []byte)) (*rawSocket, error) {
	s := &rawSocket{fd: fd, inet6: inet6, ready: ready}
	p.mu.Lock()
	if len(p.free) > 0 {
		s.slot = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	} else {
		s.slot = int32(len(p.slots))
		p.slots = append(p.slots, nil)
		p.gens = append(p.gens, 0)
	}
	p.slots[s.slot] = s
	p.gens[s.slot]++
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: s.slot, Pad: p.gens[s.slot]}
	p.mu.Unlock()
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.release(s)
		return nil, err
	}
	return s, nil
}

func (p *poller) release(s *rawSocket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slots[s.slot] == s {
		p.slots[s.slot] = nil
		p.gens[s.slot]++
		p.free = append(p.free, s.slot)
	}
}

// close stops watching and closes the socket, once no read or write is
// under way. It reports whether this call closed it.
func (s *rawSocket) close(p *poller) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	p.release(s)
	unix.Close(s.fd) // which also takes it out of the epoll set
	return true
}

var errSocketClosed = errors.New("relay socket closed")

// recv reads one datagram without blocking; unix.EAGAIN when there is
// none. The source address is unmapped. recv and send are raw system calls
// (no hand-off of the goroutine's P to another thread) since MSG_DONTWAIT
// makes them return at once.
func (s *rawSocket) recv(b []byte) (int, netip.AddrPort, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, netip.AddrPort{}, errSocketClosed
	}
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return 0, netip.AddrPort{}, e
	}
	var (
		ip   netip.Addr
		port *uint16
	)
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		ip, port = netip.AddrFrom4(sa.Addr), &sa.Port
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		ip, port = netip.AddrFrom16(sa.Addr).Unmap(), &sa.Port
	default:
		return 0, netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	pb := (*[2]byte)(unsafe.Pointer(port)) // network byte order
	return int(n), netip.AddrPortFrom(ip, uint16(pb[0])<<8|uint16(pb[1])), nil
}

// send writes one datagram without blocking (dropping it when the socket
// buffer is full).
func (s *rawSocket) send(b []byte, to netip.AddrPort) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errSocketClosed
	}
	var (
		sa4  unix.RawSockaddrInet4
		sa6  unix.RawSockaddrInet6
		sa   unsafe.Pointer
		size uintptr
		port *uint16
	)
	switch a := to.Addr(); {
	case s.inet6:
		sa6.Family, sa6.Addr = unix.AF_INET6, a.As16() // IPv4 as mapped
		sa, size, port = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6, &sa6.Port
	case a.Unmap().Is4():
		sa4.Family, sa4.Addr = unix.AF_INET, a.Unmap().As4()
		sa, size, port = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4, &sa4.Port
	default:
		return unix.EAFNOSUPPORT
	}
	pb := (*[2]byte)(unsafe.Pointer(port)) // network byte order
	pb[0], pb[1] = byte(to.Port()>>8), byte(to.Port())
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(b)), unix.MSG_DONTWAIT,
		uintptr(sa), size)
	if e != 0 {
		return e
	}
	return nil
}
