package peer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Source is one file to send.
type Source struct {
	Info FileInfo
	// Open opens the file's bytes from the start.
	Open func() (io.ReadCloser, error)
}

// SenderConfig configures a Sender.
type SenderConfig struct {
	Files []Source // required, at most MaxFiles
	// Progress is called as bytes are handed to the channel; nil: none.
	// It runs on the sending goroutine and must be quick.
	Progress func(Progress)
	// CutAfter, when positive, closes the first channel once that many
	// bytes were sent on it (a test hook simulating a dropped connection).
	CutAfter int64
	Logger   *slog.Logger // nil: discard
}

// FileResult is the outcome of one file.
type FileResult int

// File outcomes.
const (
	FilePending FileResult = iota
	FileOK
	FileBad
	FileSkipped // already complete on the receiver (a resume)
)

func (r FileResult) String() string {
	return [...]string{"pending", "ok", "bad", "skipped"}[r]
}

// Sender sends files over successive data channels until the receiver
// says done; it keeps what the receiver confirmed across channels.
type Sender struct {
	cfg   SenderConfig
	log   *slog.Logger
	total int64

	mu      sync.Mutex
	results []FileResult
	acked   []int64
	cut     bool
}

// NewSender checks the files and builds a Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if len(cfg.Files) > MaxFiles {
		return nil, fmt.Errorf("%d files; a transfer lists at most %d", len(cfg.Files), MaxFiles)
	}
	s := &Sender{cfg: cfg, log: cfg.Logger, results: make([]FileResult, len(cfg.Files)), acked: make([]int64, len(cfg.Files))}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, f := range cfg.Files {
		if f.Info.Size < 0 || f.Open == nil {
			return nil, fmt.Errorf("file %q: no size or no way to open it", f.Info.Name)
		}
		s.total += f.Info.Size
	}
	return s, nil
}

// Manifest returns the files as listed in the manifest.
func (s *Sender) Manifest() []FileInfo {
	out := make([]FileInfo, len(s.cfg.Files))
	for i, f := range s.cfg.Files {
		out[i] = f.Info
	}
	return out
}

// Results returns each file's outcome so far.
func (s *Sender) Results() []FileResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]FileResult(nil), s.results...)
}

// Acked returns the bytes the receiver confirmed writing, in all.
func (s *Sender) Acked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, a := range s.acked {
		n += a
	}
	return n
}

// channel wraps a data channel's callbacks into Go channels.
type channel struct {
	dc     *webrtc.DataChannel
	open   chan struct{}
	closed chan struct{} // stop: the channel closed or a party failed
	gone   chan struct{} // the channel itself closed
	low    chan struct{}
	text   chan []byte
	// filter sees each text message on pion's read goroutine first and
	// reports whether it consumed it; binary handles binary frames there,
	// in order (nil: a binary frame is a protocol error).
	filter   func([]byte) bool
	binary   func([]byte)
	once     sync.Once
	openOnce sync.Once
	fail     atomic.Pointer[error]
}

// newChannel wraps dc; sw, when not nil, holds the messages that arrived
// before.
func newChannel(dc *webrtc.DataChannel, sw *msgSwitch, filter func([]byte) bool, binary func([]byte)) *channel {
	c := &channel{dc: dc, open: make(chan struct{}), closed: make(chan struct{}), gone: make(chan struct{}), low: make(chan struct{}, 1),
		text: make(chan []byte, 64), filter: filter, binary: binary}
	dc.SetBufferedAmountLowThreshold(LowThreshold)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.low <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(func() { c.openOnce.Do(func() { close(c.open) }) })
	dc.OnClose(func() {
		close(c.gone)
		c.close()
	})
	onMessage := dc.OnMessage
	if sw != nil {
		onMessage = sw.set
	}
	onMessage(func(m webrtc.DataChannelMessage) {
		select {
		case <-c.closed:
			return // failed: the rest is dropped
		default:
		}
		if m.IsString {
			if c.filter != nil && c.filter(m.Data) {
				return
			}
			select {
			case c.text <- m.Data:
			case <-c.closed:
			}
			return
		}
		if c.binary != nil {
			c.binary(m.Data)
		} else {
			c.failWith(errors.New("unexpected binary frame"))
		}
	})
	if dc.ReadyState() == webrtc.DataChannelStateOpen {
		c.openOnce.Do(func() { close(c.open) })
	}
	return c
}

// watch stops the channel when lost closes (the connection failed).
func (c *channel) watch(lost <-chan struct{}) {
	if lost == nil {
		return
	}
	go func() {
		select {
		case <-lost:
			c.close()
		case <-c.closed:
		}
	}()
}

func (c *channel) close() { c.once.Do(func() { close(c.closed) }) }

func (c *channel) failWith(err error) {
	c.fail.CompareAndSwap(nil, &err)
	c.close()
}

func (c *channel) err() error {
	if p := c.fail.Load(); p != nil {
		return *p
	}
	return ErrDisconnected
}

func (c *channel) waitOpen(ctx context.Context) error {
	select {
	case <-c.open:
		return nil
	case <-c.closed:
		return c.err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *channel) sendText(b []byte) error {
	if err := c.dc.SendText(string(b)); err != nil {
		return fmt.Errorf("%w: send: %v", ErrDisconnected, err)
	}
	return nil
}

// Run sends over one data channel (the caller created it, labelled Label)
// until the receiver says done (nil: every file has an outcome; see
// Results), the channel closes (ErrDisconnected: resume on a new one),
// the receiver reports a fatal error (*PeerError), or ctx ends (a cancel
// message is sent).
func (s *Sender) Run(ctx context.Context, dc *webrtc.DataChannel) error {
	return s.run(ctx, dc, nil, nil)
}

// run is Run that also ends with ErrDisconnected when lost closes.
// opened (if not nil) is called once the channel is open.
func (s *Sender) run(ctx context.Context, dc *webrtc.DataChannel, lost <-chan struct{}, opened func()) error {
	var c *channel
	c = newChannel(dc, nil, func(b []byte) bool {
		// Acks, cancels and errors are handled at once, even while a
		// file streams.
		m, err := decodeControl(b)
		if err != nil || m.File != nil && (*m.File < 0 || *m.File >= len(s.cfg.Files)) {
			return false // the main loop reports it
		}
		switch m.T {
		case "ack":
			s.mu.Lock()
			s.acked[*m.File] = min(*m.Offset, s.cfg.Files[*m.File].Info.Size)
			s.mu.Unlock()
			return true
		case "cancel", "error":
			c.failWith(&PeerError{Cancel: m.T == "cancel", Reason: m.Reason})
			return true
		}
		return false
	}, nil)
	c.watch(lost)
	defer c.close()
	if err := c.waitOpen(ctx); err != nil {
		return err
	}
	if opened != nil {
		opened()
	}
	if err := c.sendText(msgManifest(s.Manifest())); err != nil {
		return err
	}
	var sent int64 // on this channel, for CutAfter
	for {
		var b []byte
		select {
		case b = <-c.text:
		case <-c.closed:
			select { // what arrived before the close still counts
			case b = <-c.text:
			default:
				return c.err()
			}
		case <-ctx.Done():
			c.sendText(msgReason("cancel", "cancelled"))
			c.linger()
			return ctx.Err()
		}
		m, err := decodeControl(b)
		if err == nil && m.File != nil && (*m.File < 0 || *m.File >= len(s.cfg.Files)) {
			err = fmt.Errorf("%s for file %d of %d", m.T, *m.File, len(s.cfg.Files))
		}
		if err != nil {
			c.sendText(msgReason("error", ReasonProtocol))
			return fmt.Errorf("receiver: %w", err)
		}
		switch m.T {
		case "want":
			i, off := *m.File, *m.Offset
			if off > s.cfg.Files[i].Info.Size {
				c.sendText(msgReason("error", ReasonProtocol))
				return fmt.Errorf("receiver wants file %d from %d, past its end", i, off)
			}
			if err := s.stream(ctx, c, i, off, &sent); err != nil {
				return err
			}
		case "skip", "ok", "bad":
			r := map[string]FileResult{"skip": FileSkipped, "ok": FileOK, "bad": FileBad}[m.T]
			s.mu.Lock()
			if r == FileSkipped && s.results[*m.File] != FilePending {
				r = s.results[*m.File] // keep what an earlier channel learned
			}
			s.results[*m.File] = r
			if r != FileBad {
				s.acked[*m.File] = s.cfg.Files[*m.File].Info.Size
			}
			s.mu.Unlock()
		case "done":
			c.dc.Close()
			return nil
		default:
			c.sendText(msgReason("error", ReasonProtocol))
			return fmt.Errorf("receiver sent %q", m.T)
		}
	}
}

// stream sends file i from off, then its end message.
func (s *Sender) stream(ctx context.Context, c *channel, i int, off int64, sent *int64) error {
	f := s.cfg.Files[i]
	r, err := f.Open()
	if err != nil {
		c.sendText(msgReason("error", ReasonReadFailed))
		return fmt.Errorf("open %s: %w", f.Info.Name, err)
	}
	defer r.Close()
	h := sha256.New()
	if off > 0 { // the hash covers the whole file
		if _, err := io.CopyN(h, r, off); err != nil {
			c.sendText(msgReason("error", ReasonReadFailed))
			return fmt.Errorf("read %s: %w", f.Info.Name, err)
		}
	}
	buf := make([]byte, ChunkSize)
	pos := off
	base := s.doneBefore(i)
	for pos < f.Info.Size {
		n := int(min(int64(len(buf)), f.Info.Size-pos))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			c.sendText(msgReason("error", ReasonReadFailed))
			return fmt.Errorf("read %s (did it change while sending?): %w", f.Info.Name, err)
		}
		h.Write(buf[:n])
		if err := s.waitBuffer(ctx, c); err != nil {
			return err
		}
		if err := c.dc.Send(buf[:n]); err != nil {
			return fmt.Errorf("%w: send: %v", ErrDisconnected, err)
		}
		pos += int64(n)
		*sent += int64(n)
		if s.cfg.Progress != nil {
			s.cfg.Progress(Progress{File: i, FileBytes: pos, FileSize: f.Info.Size, Bytes: base + pos, Total: s.total})
		}
		if s.cfg.CutAfter > 0 && *sent >= s.cfg.CutAfter && !s.cut {
			s.cut = true
			s.log.Info("test hook: cutting the connection", "after", *sent)
			c.dc.Close()
			return ErrDisconnected
		}
	}
	if s.cfg.Progress != nil && f.Info.Size == 0 {
		s.cfg.Progress(Progress{File: i, FileSize: 0, Bytes: base, Total: s.total})
	}
	return c.sendText(msgEnd(i, hex.EncodeToString(h.Sum(nil))))
}

// waitBuffer blocks while the channel buffers MaxBuffered or more.
func (s *Sender) waitBuffer(ctx context.Context, c *channel) error {
	for c.dc.BufferedAmount() >= MaxBuffered {
		select {
		case <-c.low:
		case <-time.After(time.Second): // re-check: never stall on a lost event
		case <-c.closed:
			return c.err()
		case <-ctx.Done():
			c.sendText(msgReason("cancel", "cancelled"))
			return ctx.Err()
		}
	}
	return nil
}

// doneBefore is the size of the files before i.
func (s *Sender) doneBefore(i int) int64 {
	var n int64
	for _, f := range s.cfg.Files[:i] {
		n += f.Info.Size
	}
	return n
}

// linger gives a last message time to leave: it waits until the other
// side closes the channel, at most a few seconds.
func (c *channel) linger() {
	select {
	case <-c.gone:
	case <-time.After(5 * time.Second):
	}
}
