package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// memFile is a file to send, kept in memory; opens counts Open calls.
type memFile struct {
	name  string
	data  []byte
	opens atomic.Int32
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sources(files []*memFile) []Source {
	var out []Source
	for _, f := range files {
		out = append(out, Source{Info: FileInfo{Name: f.name, Size: int64(len(f.data)), Type: "application/octet-stream", MTime: 1700000000000},
			Open: func() (io.ReadCloser, error) {
				f.opens.Add(1)
				return io.NopCloser(bytes.NewReader(f.data)), nil
			}})
	}
	return out
}

// relay is the appliance between the two parties: it forwards what one
// sends as the other's events.
type relay struct {
	toSender, toReceiver chan Event
}

func newRelay() *relay {
	return &relay{toSender: make(chan Event, 256), toReceiver: make(chan Event, 256)}
}

func (r *relay) send(to chan Event) func(ctx context.Context, typ string, data map[string]any) error {
	return func(ctx context.Context, typ string, data map[string]any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		select {
		case to <- Event{Type: typ, Data: b}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type pair struct {
	sender, receiver SessionConfig
}

func newPair(relay *relay) pair {
	cc := ConnConfig{LoopbackOnly: true}
	logger := func(side string) *slog.Logger {
		if os.Getenv("PEER_DEBUG") == "" {
			return nil
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("side", side)
	}
	return pair{
		sender: SessionConfig{ID: "t1", Conn: cc, Send: relay.send(relay.toReceiver), Events: relay.toSender,
			ResumeWait: 20 * time.Second, Logger: logger("sender")},
		receiver: SessionConfig{ID: "t1", Conn: cc, Send: relay.send(relay.toSender), Events: relay.toReceiver,
			ResumeWait: 20 * time.Second, Logger: logger("receiver")},
	}
}

// transfer runs both sides to the end and returns their errors.
func transfer(t *testing.T, p pair, s *Sender, r *Receiver) (sendErr, recvErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sendErr = RunSender(ctx, p.sender, s) }()
	go func() { defer wg.Done(); recvErr = RunReceiver(ctx, p.receiver, r) }()
	wg.Wait()
	return sendErr, recvErr
}

func newReceiver(t *testing.T, dir string, cfg ReceiverConfig) *Receiver {
	t.Helper()
	cfg.Dir = dir
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// listDir returns the files under dir (relative, "/"-separated).
func listDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	return out
}

func names(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestTransferFilesAndFolder(t *testing.T) {
	files := []*memFile{
		{name: "notes.txt", data: []byte("hello from the sender\n")},
		{name: "empty", data: nil},
		{name: "photos/2024/beach.jpg", data: randomBytes(t, 3<<20+123)},
		{name: "photos/2024/sunset.jpg", data: randomBytes(t, 1<<20)},
		{name: "video.bin", data: randomBytes(t, 5<<20)},
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("already here"), 0o644)
	var verif [2]string
	p := newPair(newRelay())
	p.sender.OnConnect = func(c *Conn) { verif[0] = c.Verification() }
	p.receiver.OnConnect = func(c *Conn) { verif[1] = c.Verification() }
	var last Progress
	s, err := NewSender(SenderConfig{Files: sources(files), Progress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, dir, ReceiverConfig{})
	sendErr, recvErr := transfer(t, p, s, r)
	if sendErr != nil || recvErr != nil {
		t.Fatalf("transfer: sender %v, receiver %v", sendErr, recvErr)
	}
	for i, res := range s.Results() {
		if res != FileOK {
			t.Errorf("sender's result for %s = %v, want ok", files[i].name, res)
		}
	}
	got := listDir(t, dir)
	want := map[string][]byte{"notes.txt": []byte("already here"), "notes (2).txt": files[0].data, "empty": nil,
		"photos/2024/beach.jpg": files[2].data, "photos/2024/sunset.jpg": files[3].data, "video.bin": files[4].data}
	if strings.Join(names(got), ",") != strings.Join(names(want), ",") {
		t.Fatalf("files received = %v, want %v", names(got), names(want))
	}
	for n, b := range want {
		if !bytes.Equal(got[n], b) {
			t.Errorf("%s: %d bytes differ from the %d sent", n, len(got[n]), len(b))
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "video.bin")); err != nil || st.ModTime().UnixMilli() != 1700000000000 {
		t.Errorf("video.bin mtime = %v (%v), want the sender's", st.ModTime(), err)
	}
	if last.Bytes != last.Total || last.Total != int64(9<<20+123+len(files[0].data)) {
		t.Errorf("last progress = %+v, want every byte", last)
	}
	if verif[0] == "" || verif[0] != verif[1] || len(verif[0]) != 7 {
		t.Errorf("verification strings = %q, %q; want the same \"123 456\"", verif[0], verif[1])
	}
}

// rawSender speaks the protocol by hand, to send what a correct sender
// would not.
func rawPeers(t *testing.T) (*webrtc.DataChannel, *webrtc.DataChannel, *msgSwitch) {
	t.Helper()
	cc := ConnConfig{LoopbackOnly: true}
	var ans *Conn
	offerSig := make(chan Signal, 64)
	answerSig := make(chan Signal, 64)
	off, dc, err := NewOfferer(cc, func(s Signal) { offerSig <- s })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })
	first := <-offerSig
	ans, err = NewAnswerer(cc, *first.SDP, func(s Signal) { answerSig <- s })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ans.Close() })
	go func() {
		for {
			select {
			case s := <-offerSig:
				ans.Apply(s)
			case s := <-answerSig:
				off.Apply(s)
			case <-ans.Lost():
				return
			}
		}
	}()
	select {
	case rdc := <-ans.DataChannel():
		return dc, rdc, ans.messages(rdc)
	case <-time.After(20 * time.Second):
		t.Fatal("no data channel")
	}
	return nil, nil, nil
}

func TestHashMismatchDiscarded(t *testing.T) {
	sdc, rdc, sw := rawPeers(t)
	dir := t.TempDir()
	r := newReceiver(t, dir, ReceiverConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recvErr := make(chan error, 1)
	go func() { recvErr <- r.run(ctx, rdc, nil, sw) }()

	good := randomBytes(t, 200<<10)
	bad := randomBytes(t, 300<<10)
	msgs := make(chan []byte, 16)
	sdc.OnMessage(func(m webrtc.DataChannelMessage) { msgs <- m.Data })
	opened := make(chan struct{})
	sdc.OnOpen(func() { close(opened) })
	if sdc.ReadyState() != webrtc.DataChannelStateOpen {
		<-opened
	}
	next := func(want string) control {
		t.Helper()
		select {
		case b := <-msgs:
			m, err := decodeControl(b)
			if err != nil || m.T != want {
				t.Fatalf("receiver sent %s, want %s", b, want)
			}
			return m
		case <-ctx.Done():
			t.Fatalf("no %s from the receiver", want)
		}
		return control{}
	}
	sdc.SendText(string(msgManifest([]FileInfo{{Name: "bad.bin", Size: int64(len(bad))}, {Name: "good.bin", Size: int64(len(good))}})))
	next("want")
	for off := 0; off < len(bad); off += ChunkSize {
		sdc.Send(bad[off:min(off+ChunkSize, len(bad))])
	}
	wrong := sha256.Sum256([]byte("not the file"))
	sdc.SendText(string(msgEnd(0, hex.EncodeToString(wrong[:]))))
	for {
		m := <-msgs
		if c, _ := decodeControl(m); c.T == "bad" {
			if *c.File != 0 || c.Reason != ReasonHash {
				t.Fatalf("bad message = %s", m)
			}
			break
		} else if c.T != "ack" {
			t.Fatalf("receiver sent %s, want ack or bad", m)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.bin"+PartSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the bad file's partial file is still there (%v)", err)
	}
	if w := next("want"); *w.File != 1 || *w.Offset != 0 {
		t.Fatalf("want after bad = file %d offset %d", *w.File, *w.Offset)
	}
	sdc.Send(good)
	sum := sha256.Sum256(good)
	sdc.SendText(string(msgEnd(1, hex.EncodeToString(sum[:]))))
	for {
		c, _ := decodeControl(<-msgs)
		if c.T == "done" {
			break
		}
	}
	sdc.Close()
	if err := <-recvErr; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	if res := r.Results(); res[0] != FileBad || res[1] != FileOK {
		t.Errorf("results = %v, want [bad ok]", res)
	}
	if got := names(listDir(t, dir)); strings.Join(got, ",") != "good.bin" {
		t.Errorf("files left = %v, want only good.bin", got)
	}
}

// TestResumeAfterCut closes the receiver's connection in the middle of
// the second file: the transfer resumes on a new connection from the last
// ack, without sending the finished first file again.
func TestResumeAfterCut(t *testing.T) {
	files := []*memFile{
		{name: "first.bin", data: randomBytes(t, 2<<20)},
		{name: "second.bin", data: randomBytes(t, 12<<20)},
		{name: "third.bin", data: randomBytes(t, 100<<10)},
	}
	dir := t.TempDir()
	p := newPair(newRelay())
	var mu sync.Mutex
	var conns []*Conn
	p.receiver.OnConnect = func(c *Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	var lost atomic.Int32
	p.sender.OnLost = func(error) { lost.Add(1) }
	var written atomic.Int64
	var cut sync.Once
	var cutAt atomic.Int64
	r := newReceiver(t, dir, ReceiverConfig{Progress: func(pr Progress) {
		written.Add(1)
		if pr.File == 1 && pr.FileBytes >= 5<<20+100<<10 {
			cut.Do(func() {
				cutAt.Store(pr.FileBytes)
				mu.Lock()
				c := conns[0]
				mu.Unlock()
				go c.Close() // the network drops
			})
		}
	}})
	var sentBytes atomic.Int64
	var lastSent int64
	s, _ := NewSender(SenderConfig{Files: sources(files), Progress: func(pr Progress) {
		if pr.Bytes > lastSent || pr.Bytes < lastSent {
			sentBytes.Add(max(pr.Bytes-lastSent, 0))
		}
		lastSent = pr.Bytes
	}})
	sendErr, recvErr := transfer(t, p, s, r)
	if sendErr != nil || recvErr != nil {
		t.Fatalf("transfer: sender %v, receiver %v", sendErr, recvErr)
	}
	if cutAt.Load() == 0 {
		t.Fatal("the connection was never cut")
	}
	if lost.Load() < 1 || len(conns) < 2 {
		t.Fatalf("sender saw %d losses, receiver %d connections; want a resume", lost.Load(), len(conns))
	}
	if n := files[0].opens.Load(); n != 1 {
		t.Errorf("the finished first file was opened %d times, want 1 (not sent again)", n)
	}
	got := listDir(t, dir)
	for _, f := range files {
		if !bytes.Equal(got[f.name], f.data) {
			t.Errorf("%s: received %d bytes differing from the %d sent", f.name, len(got[f.name]), len(f.data))
		}
	}
	if len(got) != len(files) {
		t.Errorf("files in the directory = %v, want only the three", names(got))
	}
	for i, res := range s.Results() {
		if res != FileOK {
			t.Errorf("file %d: %v, want ok", i, res)
		}
	}
}

func TestSafeName(t *testing.T) {
	long := strings.Repeat("é", 200) + ".txt"
	for _, tc := range []struct{ in, want string }{
		{"../x", "x"},
		{"a/../../b", "a/b"},
		{"/etc/passwd", "etc/passwd"},
		{"CON.txt", "_CON.txt"},
		{"con", "_con"},
		{"lpt9.tar.gz", "_lpt9.tar.gz"},
		{"COM0", "COM0"},
		{"CONSOLE", "CONSOLE"},
		{"dir/NUL", "dir/_NUL"},
		{"a\x00b\x1fc\x7f", "a_b_c_"},
		{`back\slash`, "back_slash"},
		{`w<i>n:d"o|w?s*`, "w_i_n_d_o_w_s_"},
		{"./././", "file"},
		{"", "file"},
		{"..", "file"},
		{"a//b/./c", "a/b/c"},
		{long, strings.Repeat("é", 127)},
		{"résumé.pdf", "résumé.pdf"},
	} {
		if got := SafeName(tc.in); got != tc.want {
			t.Errorf("SafeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{{"a.txt", 2, "a (2).txt"}, {"dir/archive.tar.gz", 3, "dir/archive.tar (3).gz"}, {".bashrc", 2, ".bashrc (2)"}, {"noext", 2, "noext (2)"}} {
		if got := numbered(tc.in, tc.n); got != tc.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"../x", "a/../../b", "CON.txt", "a\x00b", `c:\windows`, strings.Repeat("x/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := SafeName(in)
		if out == "" || strings.HasPrefix(out, "/") {
			t.Fatalf("SafeName(%q) = %q", in, out)
		}
		for _, part := range strings.Split(out, "/") {
			if part == "" || part == "." || part == ".." || len(part) > maxPart || strings.ContainsAny(part, "\\<>:\"|?*\x00\x7f") || reserved(part) {
				t.Fatalf("SafeName(%q) = %q has the part %q", in, out, part)
			}
		}
		if !filepath.IsLocal(filepath.FromSlash(out)) {
			t.Fatalf("SafeName(%q) = %q is not local", in, out)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add([]byte(`{"t":"manifest","files":[{"name":"a","size":1,"type":"","mtime":0}],"total":1}`))
	f.Add([]byte(`{"t":"want","file":0,"offset":0}`))
	f.Add([]byte(`{"t":"end","file":0,"sha256":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"t":"ack","file":-1,"offset":-5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeControl(b)
		if err != nil {
			return
		}
		if (m.T == "want" || m.T == "ack") && (m.File == nil || m.Offset == nil || *m.Offset < 0) {
			t.Fatalf("decodeControl(%q) accepted %+v", b, m)
		}
	})
}

// TestHostileNamesLandInside sends files named to escape the directory.
func TestHostileNamesLandInside(t *testing.T) {
	files := []*memFile{
		{name: "../x", data: []byte("x")},
		{name: "a/../../b", data: []byte("b")},
		{name: "CON.txt", data: []byte("con")},
		{name: "bell\x07\nline.txt", data: []byte("ctl")},
		{name: "/abs/path", data: []byte("abs")},
		{name: "..", data: []byte("dots")},
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "in")
	os.Mkdir(dir, 0o755)
	s, _ := NewSender(SenderConfig{Files: sources(files)})
	r := newReceiver(t, dir, ReceiverConfig{})
	sendErr, recvErr := transfer(t, newPair(newRelay()), s, r)
	if sendErr != nil || recvErr != nil {
		t.Fatalf("transfer: sender %v, receiver %v", sendErr, recvErr)
	}
	got := names(listDir(t, dir))
	want := []string{"_CON.txt", "a/b", "abs/path", "bell__line.txt", "file", "x"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("files = %q, want %q", got, want)
	}
	if outside := names(listDir(t, parent)); len(outside) != len(want) {
		t.Errorf("files under the parent = %q: something landed outside", outside)
	}
}

// fullDisk fails writes with ENOSPC once limit bytes were written.
type fullDisk struct {
	*os.File
	left int64
}

func (f *fullDisk) Write(b []byte) (int, error) {
	if int64(len(b)) > f.left {
		n, _ := f.File.Write(b[:f.left])
		f.left = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.left -= int64(len(b))
	return f.File.Write(b)
}

func TestDiskFull(t *testing.T) {
	files := []*memFile{{name: "small.txt", data: []byte("fits")}, {name: "big.bin", data: randomBytes(t, 6<<20)}}
	dir := t.TempDir()
	left := int64(2 << 20)
	r := newReceiver(t, dir, ReceiverConfig{OpenPart: func(root *os.Root, name string) (PartFile, error) {
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		fd := &fullDisk{File: f, left: left}
		left = max(left-int64(4), 0)
		return fd, nil
	}})
	s, _ := NewSender(SenderConfig{Files: sources(files)})
	sendErr, recvErr := transfer(t, newPair(newRelay()), s, r)
	if !errors.Is(sendErr, ErrDiskFull) {
		t.Errorf("sender's error = %v, want the receiver's disk is full", sendErr)
	}
	if !errors.Is(recvErr, ErrDiskFull) {
		t.Errorf("receiver's error = %v, want disk full", recvErr)
	}
	if got := names(listDir(t, dir)); strings.Join(got, ",") != "small.txt" {
		t.Errorf("files left = %v, want small.txt only (the partial file removed)", got)
	}
}
