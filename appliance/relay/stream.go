package relay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

const (
	// firstFrameTimeout bounds the TLS handshake and first request on a new
	// TURN stream.
	firstFrameTimeout = 30 * time.Second
	// maxStreamsPerAddr bounds the TURN streams open from one IP address.
	maxStreamsPerAddr = 64
)

var errBadFrame = errors.New("neither a STUN message nor ChannelData")

// frameSize returns the length of the TURN frame that starts with h (at
// least 4 bytes): a STUN message (20-byte header plus its length) or
// ChannelData (4-byte header plus its length, padded to 4 on streams, RFC
// 8656 section 12.5).
func frameSize(h []byte) (int, error) {
	if len(h) < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(h[2:4]))
	switch h[0] >> 6 {
	case 0:
		return 20 + n, nil
	case 1:
		return 4 + (n+3)&^3, nil
	}
	return 0, errBadFrame
}

// streamListener hands pion TCP or TLS connections that screen each frame.
type streamListener struct {
	net.Listener
	s         *Server
	transport string // "tcp" or "tls"
	once      sync.Once
}

// Accept returns the next connection. Unlike pion, which stops serving on
// any accept error, it retries errors other than closing (EMFILE...).
func (l *streamListener) Accept() (net.Conn, error) {
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.s.isClosed() {
				l.once.Do(l.s.wg.Done)
				return nil, err
			}
			l.s.log.Warn("accept TURN connection; retrying", "transport", l.transport, "err", err)
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if sc := l.s.addStream(c, l.transport); sc != nil {
			return sc, nil
		}
		c.Close()
	}
}

// streamConn is a TURN stream: Read returns whole frames that passed
// screen, and drops the rest.
type streamConn struct {
	net.Conn
	s            *Server
	transport    string
	ft           fiveTuple
	ip           netip.Addr
	r            *bufio.Reader
	buf, pending []byte
	started      bool
	once         sync.Once
}

// addStream registers a new stream, or returns nil when the server is
// closed or the address has too many.
func (s *Server) addStream(c net.Conn, transport string) *streamConn {
	sc := &streamConn{Conn: c, s: s, transport: transport, r: bufio.NewReaderSize(c, 2048),
		ft: fiveTuple{client: addrPort(c.RemoteAddr()), server: addrPort(c.LocalAddr()), stream: true}}
	sc.ip = sc.ft.client.Addr()
	s.mu.Lock()
	closed, n := s.closed, s.streamAddrs[sc.ip]
	if !closed && n < maxStreamsPerAddr {
		s.streams[sc] = struct{}{}
		s.streamAddrs[sc.ip]++
		s.wg.Add(1)
	}
	s.mu.Unlock()
	switch {
	case closed:
		return nil
	case n >= maxStreamsPerAddr:
		s.refuseFrom(ReasonAddrQuota, "", sc.ip, "streams", n)
		return nil
	}
	c.SetReadDeadline(time.Now().Add(firstFrameTimeout))
	return sc
}

func (c *streamConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		frame, err := c.next()
		if err != nil {
			c.finish()
			return 0, err
		}
		if frame[0]>>6 == 1 && c.s.relayChannelData(frame, c.ft) {
			continue
		}
		if c.s.screen(frame, origin{ft: c.ft, transport: c.transport, out: c}) {
			c.pending = frame
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next reads one whole frame into c.buf.
func (c *streamConn) next() ([]byte, error) {
	h, err := c.r.Peek(4)
	if err != nil {
		return nil, err
	}
	n, err := frameSize(h)
	if err != nil {
		return nil, err
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	f := c.buf[:n]
	if _, err := io.ReadFull(c.r, f); err != nil {
		return nil, err
	}
	if !c.started {
		c.started = true
		c.Conn.SetReadDeadline(time.Time{})
	}
	return f, nil
}

func (c *streamConn) write(b []byte) error {
	_, err := c.Conn.Write(b)
	return err
}

// finish forgets the stream once its reader (pion's) has stopped.
func (c *streamConn) finish() {
	c.once.Do(func() {
		s := c.s
		s.mu.Lock()
		delete(s.streams, c)
		if s.streamAddrs[c.ip]--; s.streamAddrs[c.ip] <= 0 {
			delete(s.streamAddrs, c.ip)
		}
		s.mu.Unlock()
		s.wg.Done()
	})
}
