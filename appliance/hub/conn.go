package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// A connection's costs, kept small because a household may leave many
// devices connected: an idle connection has one goroutine (its reader, the
// request's own), small read and write buffers and an empty queue. Writes
// run in a goroutine started when the queue fills and ending when it is
// empty; everything queued by then goes out in one socket write.
const (
	connReadBuffer  = 1 << 10
	connWriteBuffer = 512
	writeTimeout    = 10 * time.Second
)

type conn struct {
	h      *Hub
	ws     *websocket.Conn
	bc     *batchConn
	client Client
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	queue   [][]byte
	spare   [][]byte // the previous batch's slice, reused
	writing bool     // a writer runs (or Serve holds writes back)
	ended   bool     // Serve has returned: drop what is queued
	ping    *time.Timer
}

// enqueue queues message b for the client.
func (c *conn) enqueue(b []byte) { c.enqueueFrame(frame(b)) }

// enqueueFrame queues a framed message (see frame) for the client; a
// client whose queue is full is cut off. An idle connection whose socket
// takes the frame at once gets it written here, without a goroutine:
// fanning an event out to many clients then costs one system call each.
func (c *conn) enqueueFrame(f []byte) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	if !c.writing && len(c.queue) == 0 && c.bc.raw != nil {
		c.writing = true
		c.mu.Unlock()
		n, err := c.bc.writeNow(f)
		c.mu.Lock()
		if err != nil {
			c.writing = false
			c.mu.Unlock()
			c.cancel(fmt.Errorf("write: %w", err))
			return
		}
		if n < len(f) { // the rest goes first
			c.queue = slices.Insert(c.queue, 0, f[n:])
		}
		start := len(c.queue) > 0
		c.writing = start
		c.mu.Unlock()
		if start {
			go c.drain()
		}
		return
	}
	if len(c.queue) >= c.h.queue {
		c.mu.Unlock()
		c.cancel(errSlow)
		return
	}
	c.queue = append(c.queue, f)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		go c.drain()
	}
}

// release lets queued messages flow (Serve holds them back until hello and
// the replay are written).
func (c *conn) release() {
	c.mu.Lock()
	start := len(c.queue) > 0 && !c.ended
	c.writing = start
	c.mu.Unlock()
	if start {
		go c.drain()
	}
}

// drain writes what is queued, in batches, until the queue is empty.
func (c *conn) drain() {
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 || c.ended {
			c.queue = c.queue[:0]
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.queue, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		err := c.writeBatch(batch)
		clear(batch)
		c.mu.Lock()
		if cap(batch) <= 16 { // keep only a small slice for an idle client
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		if err != nil {
			c.cancel(fmt.Errorf("write: %w", err))
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			return
		}
	}
}

// writeBatch writes framed messages in one socket write.
func (c *conn) writeBatch(frames [][]byte) error {
	return c.bc.writeFrames(frames)
}

// keepalive pings the client every interval; a client that does not answer
// within the interval is cut off.
func (c *conn) keepalive(interval time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ping = time.AfterFunc(interval, func() {
		pctx, cancel := context.WithTimeout(context.Background(), interval)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil {
			c.cancel(fmt.Errorf("keepalive: %w", err))
			return
		}
		c.mu.Lock()
		if !c.ended {
			c.ping.Reset(interval)
		}
		c.mu.Unlock()
	})
}

// end stops the keepalive and drops what is still queued.
func (c *conn) end() {
	c.mu.Lock()
	c.ended = true
	if c.ping != nil {
		c.ping.Stop()
	}
	c.queue = nil
	c.mu.Unlock()
}

// batchConn is the WebSocket's network connection. The library writes its
// control frames (ping, pong, close) through it, one Write per frame (its
// write buffer holds any control frame whole). Messages are framed here,
// per RFC 6455 (a server's frames are not masked), and written by
// writeFrames and writeNow, a batch in one system call and without the
// library's per-frame locks, timers and contexts; the lock keeps frames
// whole, and once the library has sent its close frame nothing follows.
type batchConn struct {
	net.Conn
	raw       syscall.RawConn // nil unless a plain TCP or Unix socket
	mu        sync.Mutex
	closeSent bool
}

var frameBufs = sync.Pool{New: func() any { return new([]byte) }}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == 0x8 { // a close frame
		b.closeSent = true
	}
	return b.Conn.Write(p)
}

// writeFrames writes frames in one write, waiting at most writeTimeout.
func (b *batchConn) writeFrames(frames [][]byte) error {
	var buf []byte
	var bp *[]byte
	if len(frames) == 1 {
		buf = frames[0]
	} else {
		bp = frameBufs.Get().(*[]byte)
		buf = (*bp)[:0]
		for _, f := range frames {
			buf = append(buf, f...)
		}
	}
	b.mu.Lock()
	err := net.ErrClosed
	if !b.closeSent {
		if err = b.Conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err == nil {
			_, err = b.Conn.Write(buf)
		}
	}
	b.mu.Unlock()
	if bp != nil && cap(buf) <= 64<<10 {
		*bp = buf
		frameBufs.Put(bp)
	}
	return err
}

// writeNow writes as much of f as the socket takes without waiting (none
// when its buffer is full, or while the library writes a control frame)
// and returns how much that was.
func (b *batchConn) writeNow(f []byte) (int, error) {
	if !b.mu.TryLock() {
		return 0, nil
	}
	defer b.mu.Unlock()
	if b.closeSent {
		return 0, net.ErrClosed
	}
	var n int
	var werr error
	if err := b.raw.Write(func(fd uintptr) bool {
		n, werr = writeFD(fd, f)
		return true // never wait for the socket: the caller queues the rest
	}); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil // the last batch's deadline: the writer sets a new one
		}
		return 0, err
	}
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		return 0, nil
	}
	return max(n, 0), werr
}

// frame returns message b as one final text frame.
func frame(b []byte) []byte {
	return append(appendFrameHeader(make([]byte, 0, len(b)+10), len(b)), b...)
}

// appendFrameHeader appends the header of an unmasked, final text frame
// with n bytes of payload.
func appendFrameHeader(buf []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n < 126:
		return append(buf, finText, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(buf, finText, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(buf, finText, 127), uint64(n))
	}
}

// hijacker hands the WebSocket library a batchConn and smaller buffers
// than the HTTP server's, once the handshake is done.
type hijacker struct {
	http.ResponseWriter
	bc *batchConn
}

func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.bc = &batchConn{Conn: nc}
	switch sc := nc.(type) {
	case *net.TCPConn:
		w.bc.raw, _ = sc.SyscallConn()
	case *net.UnixConn:
		w.bc.raw, _ = sc.SyscallConn()
	}
	// Bytes the client sent after its request are buffered already; the
	// new reader starts with them.
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	if len(pending) > connReadBuffer {
		brw.Writer.Reset(w.bc)
		return w.bc, brw, nil
	}
	var src io.Reader = w.bc
	if len(pending) > 0 {
		src = io.MultiReader(bytes.NewReader(bytes.Clone(pending)), w.bc)
	}
	r := bufio.NewReaderSize(src, connReadBuffer)
	if len(pending) > 0 {
		if _, err := r.Peek(len(pending)); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("take over connection: %w", err)
		}
	}
	return w.bc, bufio.NewReadWriter(r, bufio.NewWriterSize(w.bc, connWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *hijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }
