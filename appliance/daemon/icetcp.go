package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// sniffTimeout bounds the wait for a new connection's first bytes.
const sniffTimeout = 10 * time.Second

// stunMagic is the STUN magic cookie (RFC 5389).
const stunMagic = 0x2112A442

// splitICE shares the main TCP port between the web server and ICE over
// TCP (RFC 6544) for voice, so a device whose UDP is blocked can still
// join a call through the one port it already reaches. A connection that
// opens with an RFC 4571-framed STUN request goes to ice; everything else
// (TLS, plain HTTP) to web. Closing both closes l.
func splitICE(l net.Listener) (web, ice net.Listener) {
	s := &splitter{l: l}
	s.web = s.sub()
	s.ice = s.sub()
	go s.run()
	return s.web, s.ice
}

type splitter struct {
	l        net.Listener
	web, ice *subListener

	mu   sync.Mutex
	open int
}

func (s *splitter) sub() *subListener {
	s.mu.Lock()
	s.open++
	s.mu.Unlock()
	return &subListener{parent: s, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (s *splitter) run() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			s.web.fail(err)
			s.ice.fail(err)
			return
		}
		go s.route(c)
	}
}

// route reads the first bytes of c and hands it to the listener they call
// for, with those bytes put back in front.
func (s *splitter) route(c net.Conn) {
	var head [10]byte
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	n, _ := io.ReadFull(c, head[:])
	c.SetReadDeadline(time.Time{})
	to := s.web
	if n == len(head) && isFramedSTUN(head[:]) {
		to = s.ice
	}
	to.deliver(&prefixConn{Conn: c, head: bytes.NewReader(head[:n])})
}

// isFramedSTUN reports whether b starts an RFC 4571 frame holding a STUN
// request: a length, then a message type of the request class and the
// magic cookie.
func isFramedSTUN(b []byte) bool {
	typ := binary.BigEndian.Uint16(b[2:4])
	return typ&0xC000 == 0 && typ&0x0110 == 0 && binary.BigEndian.Uint32(b[6:10]) == stunMagic
}

func (s *splitter) closed() {
	s.mu.Lock()
	s.open--
	last := s.open == 0
	s.mu.Unlock()
	if last {
		s.l.Close()
	}
}

// subListener is one side of a splitter.
type subListener struct {
	parent *splitter
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once

	mu  sync.Mutex
	err error
}

func (l *subListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *subListener) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.once.Do(func() { close(l.done); l.parent.closed() })
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.done); l.parent.closed() })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.parent.l.Addr() }

// prefixConn replays the bytes read while routing before the rest.
type prefixConn struct {
	net.Conn
	head *bytes.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if c.head.Len() > 0 {
		return c.head.Read(b)
	}
	return c.Conn.Read(b)
}
