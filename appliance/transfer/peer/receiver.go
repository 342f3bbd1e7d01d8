package peer

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"
)

// PartFile is a partial file being written.
type PartFile interface {
	io.Writer
	io.Closer
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
	Sync() error
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Dir string // where files are written; required
	// OpenPart opens (creating it if needed) a partial file under root;
	// nil opens it with root.OpenFile. Tests wrap it (a full disk).
	OpenPart func(root *os.Root, name string) (PartFile, error)
	// Progress is called as bytes are written; nil: none. It runs on
	// pion's read goroutine and must be quick.
	Progress func(Progress)
	Logger   *slog.Logger // nil: discard
}

// Receiver writes the files of one transfer into a directory over
// successive data channels, keeping what it wrote across them.
type Receiver struct {
	cfg  ReceiverConfig
	log  *slog.Logger
	root *os.Root

	mu       sync.Mutex
	manifest []FileInfo
	total    int64
	files    []recvFile
	active   *activeFile
}

type recvFile struct {
	name   string // the safe relative name, "/"-separated
	result FileResult
	acked  int64
	state  []byte // hash state at acked
}

type activeFile struct {
	i       int
	f       PartFile
	h       hash.Hash
	pos     int64
	lastAck int64
	failed  bool
}

// NewReceiver builds a Receiver writing into cfg.Dir.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	root, err := os.OpenRoot(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open receiving directory: %w", err)
	}
	r := &Receiver{cfg: cfg, log: cfg.Logger, root: root}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.cfg.OpenPart == nil {
		r.cfg.OpenPart = func(root *os.Root, name string) (PartFile, error) {
			return root.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
		}
	}
	return r, nil
}

// Manifest returns the files as the sender listed them (nil before the
// first manifest arrived).
func (r *Receiver) Manifest() []FileInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifest
}

// Names returns the relative names the files are written under.
func (r *Receiver) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.files))
	for i, f := range r.files {
		out[i] = f.name
	}
	return out
}

// Results returns each file's outcome so far.
func (r *Receiver) Results() []FileResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]FileResult, len(r.files))
	for i, f := range r.files {
		out[i] = f.result
	}
	return out
}

// Close removes the partial file of an unfinished transfer (one that will
// not resume) and releases the directory. It is safe to call twice.
func (r *Receiver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.root == nil {
		return nil
	}
	r.discardLocked()
	for i, f := range r.files {
		if f.result == FilePending {
			r.root.Remove(partName(f.name))
			r.files[i].acked, r.files[i].state = 0, nil
		}
	}
	err := r.root.Close()
	r.root = nil
	return err
}

// discardLocked closes and removes the active partial file.
func (r *Receiver) discardLocked() {
	if a := r.active; a != nil {
		a.f.Close()
		r.root.Remove(partName(r.files[a.i].name))
		r.files[a.i].acked, r.files[a.i].state = 0, nil
		r.active = nil
	}
}

func partName(name string) string {
	dir, file := path.Split(name)
	return dir + cutUTF8(file, maxPart-len(PartSuffix)) + PartSuffix
}

// Run receives over one data channel (the one the sender opened; its
// handlers must be set before the sender's first message arrives, so call
// Run from OnDataChannel) until
// every file has an outcome (nil; see Results), the channel closes
// (ErrDisconnected: the partial file stays for a resume), a fatal error
// (the partial file is removed), or ctx ends (a cancel is sent).
func (r *Receiver) Run(ctx context.Context, dc *webrtc.DataChannel) error {
	return r.run(ctx, dc, nil, nil)
}

// run is Run that also ends with ErrDisconnected when lost closes.
// sw holds the messages that arrived before (nil: none can have).
func (r *Receiver) run(ctx context.Context, dc *webrtc.DataChannel, lost <-chan struct{}, sw *msgSwitch) error {
	var c *channel
	c = newChannel(dc, sw, nil, func(b []byte) {
		if err := r.write(c, b); err != nil {
			c.failWith(err)
		}
	})
	c.watch(lost)
	defer c.close()
	if err := c.waitOpen(ctx); err != nil {
		return err
	}
	fatal := func(reason string, err error) error {
		c.sendText(msgReason("error", reason))
		r.mu.Lock()
		r.discardLocked()
		r.mu.Unlock()
		c.linger()
		return err
	}
	next := 0 // the file to ask for next
	started := false
	for {
		var b []byte
		select {
		case b = <-c.text:
		case <-c.closed:
			select {
			case b = <-c.text:
			default:
				return r.closed(c)
			}
		case <-ctx.Done():
			c.sendText(msgReason("cancel", "cancelled"))
			r.mu.Lock()
			r.discardLocked()
			r.mu.Unlock()
			c.linger()
			return ctx.Err()
		}
		m, err := decodeControl(b)
		if err != nil {
			return fatal(ReasonProtocol, fmt.Errorf("sender: %w", err))
		}
		switch {
		case m.T == "manifest" && !started:
			if err := r.takeManifest(m.Files); err != nil {
				return fatal(ReasonProtocol, err)
			}
			started = true
		case m.T == "end" && started && r.isActive(*m.File):
			if err := r.finish(c, *m.File, m.SHA256); err != nil {
				return fatal(reasonFor(err), err)
			}
			next = *m.File + 1
		case m.T == "cancel":
			r.mu.Lock()
			r.discardLocked()
			r.mu.Unlock()
			return &PeerError{Cancel: true, Reason: m.Reason}
		case m.T == "error":
			r.mu.Lock()
			r.discardLocked()
			r.mu.Unlock()
			return &PeerError{Reason: m.Reason}
		default:
			return fatal(ReasonProtocol, fmt.Errorf("sender sent %q out of turn", m.T))
		}
		// Ask for the next file, skipping those already finished.
		for ; next < len(r.files) && r.result(next) != FilePending; next++ {
			if err := c.sendText(msgFile("skip", next)); err != nil {
				return r.closed(c)
			}
		}
		if next == len(r.files) {
			if err := c.sendText(msgDone()); err != nil {
				return r.closed(c)
			}
			c.linger()
			return nil
		}
		off, err := r.start(next)
		if err != nil {
			return fatal(reasonFor(err), err)
		}
		if err := c.sendText(msgFileOffset("want", next, off)); err != nil {
			return r.closed(c)
		}
	}
}

// closed is Run's result when the channel closed: a fatal error from the
// write path, or ErrDisconnected with the partial file kept.
func (r *Receiver) closed(c *channel) error {
	err := c.err()
	if !errors.Is(err, ErrDisconnected) {
		r.mu.Lock()
		r.discardLocked()
		r.mu.Unlock()
		c.linger() // the error message was sent; let it leave
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.active; a != nil {
		a.f.Close()
		r.active = nil
	}
	return err
}

func reasonFor(err error) string {
	if errors.Is(err, ErrDiskFull) {
		return ReasonDiskFull
	}
	return ReasonWriteFailed
}

func (r *Receiver) result(i int) FileResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[i].result
}

func (r *Receiver) isActive(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active != nil && r.active.i == i
}

// takeManifest names the files of a first manifest, or checks that a
// resumed channel's manifest is the same.
func (r *Receiver) takeManifest(files []FileInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.manifest != nil {
		if len(files) != len(r.manifest) {
			return errors.New("the resumed transfer lists other files")
		}
		for i, f := range files {
			if f.Name != r.manifest[i].Name || f.Size != r.manifest[i].Size {
				return errors.New("the resumed transfer lists other files")
			}
		}
		return nil
	}
	r.manifest = files
	taken := map[string]bool{}
	for _, f := range files {
		r.total += f.Size
		name := r.freeName(SafeName(f.Name), taken)
		taken[name] = true
		r.files = append(r.files, recvFile{name: name})
	}
	return nil
}

// freeName returns name, or its first numbered alternative that neither
// exists nor is taken.
func (r *Receiver) freeName(name string, taken map[string]bool) string {
	for n, cand := 2, name; ; n++ {
		_, err := r.root.Lstat(cand)
		_, perr := r.root.Lstat(partName(cand))
		if !taken[cand] && errors.Is(err, fs.ErrNotExist) && errors.Is(perr, fs.ErrNotExist) {
			return cand
		}
		cand = numbered(name, n)
	}
}

// start opens file i's partial file at its acknowledged offset.
func (r *Receiver) start(i int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rf := &r.files[i]
	if dir := path.Dir(rf.name); dir != "." {
		if err := r.root.MkdirAll(dir, 0o755); err != nil {
			return 0, writeErr(fmt.Errorf("create folder %s: %w", dir, err))
		}
	}
	f, err := r.cfg.OpenPart(r.root, partName(rf.name))
	if err != nil {
		return 0, writeErr(fmt.Errorf("create %s: %w", partName(rf.name), err))
	}
	h := sha256.New()
	off := rf.acked
	if off > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(rf.state); err != nil {
			off = 0
		}
	}
	if off == 0 {
		h.Reset()
	}
	if err := f.Truncate(off); err != nil { // bytes past the last ack are written again
		f.Close()
		return 0, writeErr(fmt.Errorf("truncate %s: %w", partName(rf.name), err))
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return 0, writeErr(fmt.Errorf("seek %s: %w", partName(rf.name), err))
	}
	r.active = &activeFile{i: i, f: f, h: h, pos: off, lastAck: off}
	return off, nil
}

func writeErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return err
}

// write takes one binary frame (on pion's read goroutine).
func (r *Receiver) write(c *channel, b []byte) error {
	r.mu.Lock()
	a := r.active
	if a == nil || a.failed || a.pos+int64(len(b)) > r.manifest[a.i].Size {
		r.mu.Unlock()
		c.sendText(msgReason("error", ReasonProtocol))
		return errors.New("sender sent bytes that were not asked for")
	}
	if _, err := a.f.Write(b); err != nil {
		a.failed = true
		r.mu.Unlock()
		err = writeErr(fmt.Errorf("write %s: %w", partName(r.files[a.i].name), err))
		c.sendText(msgReason("error", reasonFor(err)))
		return err
	}
	a.h.Write(b)
	a.pos += int64(len(b))
	var ack bool
	if a.pos-a.lastAck >= AckEvery {
		ack = true
		r.ackLocked(a)
	}
	p := Progress{File: a.i, FileBytes: a.pos, FileSize: r.manifest[a.i].Size, Total: r.total}
	for _, f := range r.manifest[:a.i] {
		p.Bytes += f.Size
	}
	p.Bytes += a.pos
	r.mu.Unlock()
	if ack {
		c.sendText(msgFileOffset("ack", a.i, a.pos))
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(p)
	}
	return nil
}

// ackLocked records the active file's position as the resume point.
func (r *Receiver) ackLocked(a *activeFile) {
	state, err := a.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return
	}
	a.lastAck = a.pos
	r.files[a.i].acked, r.files[a.i].state = a.pos, state
}

// finish verifies file i after its end message and renames it into place
// (ok) or removes it (bad).
func (r *Receiver) finish(c *channel, i int, sum string) error {
	r.mu.Lock()
	a := r.active
	rf := &r.files[i]
	info := r.manifest[i]
	if a.pos != info.Size {
		r.mu.Unlock()
		return fmt.Errorf("%s ended at %d of %d bytes", info.Name, a.pos, info.Size)
	}
	got := hex.EncodeToString(a.h.Sum(nil))
	part := partName(rf.name)
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	r.active = nil
	if err != nil {
		r.root.Remove(part)
		r.mu.Unlock()
		return writeErr(fmt.Errorf("write %s: %w", part, err))
	}
	rf.acked, rf.state = info.Size, nil
	if got != sum {
		r.root.Remove(part)
		rf.result = FileBad
		r.mu.Unlock()
		r.log.Warn("file failed verification", "file", rf.name)
		c.sendText(msgFileOffset("ack", i, info.Size))
		return c.sendText(msgBad(i, ReasonHash))
	}
	// The name may have been taken since the manifest came.
	if _, err := r.root.Lstat(rf.name); err == nil {
		rf.name = r.freeName(SafeName(info.Name), map[string]bool{})
	}
	if err := r.root.Rename(part, rf.name); err != nil {
		r.root.Remove(part)
		r.mu.Unlock()
		return fmt.Errorf("rename %s: %w", part, err)
	}
	if info.MTime > 0 {
		t := time.UnixMilli(info.MTime)
		r.root.Chtimes(rf.name, t, t)
	}
	rf.result = FileOK
	r.mu.Unlock()
	c.sendText(msgFileOffset("ack", i, info.Size))
	return c.sendText(msgFile("ok", i))
}
