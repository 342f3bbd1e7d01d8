// Command transferbench measures file transfer from the command line
// (.ci/bench-transfer-cli): it runs an appliance in this process (plain
// HTTP and its TURN relay on 127.0.0.1), logs two members in with the
// hearth binary given, and times `hearth send` to `hearth receive` (two
// processes) for a large file, direct and relay-only, each beside a bare
// pion data channel between two processes of this program (64 KiB
// messages under the same bufferedAmount flow control, no protocol, no
// disk) in the same run. It then sends a 1 GB file and a 1 MB file and
// reports the peak RSS of both CLI processes (VmHWM) and the growth
// between the two, and the time to first byte after accept. It prints
// Markdown table rows.
//
//	transferbench -bin bin/hearth [-size 512] [-big 1024]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/daemon"
	"github.com/hearth-home/hearth/appliance/transfer/peer"
	"github.com/pion/webrtc/v4"
)

func main() {
	bin := flag.String("bin", "bin/hearth", "the hearth binary")
	size := flag.Int("size", 512, "MiB sent for the throughput figures")
	big := flag.Int("big", 1024, "MiB sent for the memory figures")
	role := flag.String("role", "", "internal: bare-send or bare-recv")
	n := flag.Int64("n", 0, "internal: bytes for the bare transfer")
	relay := flag.Bool("relay", false, "internal: relay-only bare transfer")
	ice := flag.String("ice", "", "internal: ICE servers (JSON) for the bare transfer")
	flag.Parse()
	if *role != "" {
		if err := bareRole(*role, *n, *relay, *ice); err != nil {
			fmt.Fprintln(os.Stderr, "transferbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, int64(*size)<<20, int64(*big)<<20); err != nil {
		fmt.Fprintln(os.Stderr, "transferbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, work, url string
	users          map[string]string // name → XDG_CONFIG_HOME
	ice            []webrtc.ICEServer
}

func step(format string, args ...any) { fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...) }

func run(bin string, size, big int64) error {
	work, err := os.MkdirTemp("", "hearth-transferbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &bench{bin: bin, work: work, users: map[string]string{}}
	stop, err := b.appliance()
	if err != nil {
		return err
	}
	defer stop()

	var rows [][]string
	row := func(fig, res, target, ok string) { rows = append(rows, []string{fig, res, target, ok}) }
	file := filepath.Join(work, "data.bin")
	if err := randomFile(file, size); err != nil {
		return err
	}
	mb := func(n int64) float64 { return float64(n) / 1e6 }
	for _, relay := range []bool{false, true} {
		mode := "direct"
		if relay {
			mode = "via the relay"
		}
		step("bare pion data channel, %d MiB %s", size>>20, mode)
		bare, err := b.bare(size, relay)
		if err != nil {
			return fmt.Errorf("bare data channel %s: %w", mode, err)
		}
		step("hearth send → hearth receive, %d MiB %s", size>>20, mode)
		res, err := b.cli(file, relay)
		if err != nil {
			return fmt.Errorf("CLI %s: %w", mode, err)
		}
		hearth := mb(size) / res.transfer.Seconds()
		raw := mb(size) / bare.Seconds()
		ratio := hearth / raw
		ok := "ok"
		if ratio < 0.9 {
			ok = "MISS"
		}
		row(fmt.Sprintf("CLI to CLI, %d MiB %s: hearth / bare pion", size>>20, mode),
			fmt.Sprintf("%.1f / %.1f MB/s (ratio %.2f)", hearth, raw, ratio), "ratio >= 0.9", ok)
		row(fmt.Sprintf("  time to first byte after accept (%s)", mode), fmt.Sprintf("%d ms", res.firstByte.Milliseconds()), "-", "")
	}
	step("memory: a 1 MiB and a %d MiB file, direct", big>>20)
	small := filepath.Join(work, "small.bin")
	if err := randomFile(small, 1<<20); err != nil {
		return err
	}
	base, err := b.cli(small, false)
	if err != nil {
		return err
	}
	os.Remove(file)
	bigFile := filepath.Join(work, "big.bin")
	if err := randomFile(bigFile, big); err != nil {
		return err
	}
	large, err := b.cli(bigFile, false)
	if err != nil {
		return err
	}
	for _, side := range []struct {
		name     string
		big, one int64
	}{{"sender", large.sendRSS, base.sendRSS}, {"receiver", large.recvRSS, base.recvRSS}} {
		growth := mb(side.big - side.one)
		ok := "ok"
		if growth >= 100 {
			ok = "MISS"
		}
		row(fmt.Sprintf("Peak RSS of the %s, %d MiB file (growth over a 1 MiB file)", side.name, big>>20),
			fmt.Sprintf("%.1f MB (+%.1f MB)", mb(side.big), growth), "growth < 100 MB", ok)
	}
	row(fmt.Sprintf("  throughput of that %d MiB transfer", big>>20), fmt.Sprintf("%.1f MB/s", mb(big)/large.transfer.Seconds()), "-", "")
	for _, r := range rows {
		fmt.Printf("%s|%s|%s|%s|transferbench\n", r[0], r[1], r[2], r[3])
	}
	return nil
}

func randomFile(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for left := n; left > 0; left -= int64(len(buf)) {
		buf[0]++ // not one block repeated: nothing on the way may compress it
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			return err
		}
	}
	return nil
}

// appliance starts Hearth on 127.0.0.1 with the members mum and kid,
// logged in with the CLI.
func (b *bench) appliance() (func(), error) {
	dir := filepath.Join(b.work, "data")
	os.Mkdir(dir, 0o700)
	cfg, err := config.Load(config.Options{File: filepath.Join(dir, "none.toml"), Flags: map[string]string{"data": dir, "tls": "off",
		"mdns": "false", "tailnet": "false", "listen": "127.0.0.1:0", "turn-listen": "127.0.0.1:0"}})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: l, Version: "bench", Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1},
		RelayIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		l.Close()
		return nil, err
	}
	if err := d.Start(context.Background()); err != nil {
		return nil, err
	}
	stop := func() { d.Stop(context.Background()) }
	b.url = "http://" + l.Addr().String()
	ops, closeOps, err := admin.Connect(dir, nil)
	if err != nil {
		stop()
		return nil, err
	}
	tok, err := ops.SetupToken(context.Background())
	closeOps()
	if err != nil {
		stop()
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	mum := &http.Client{Jar: jar}
	var si struct{ CSRF string }
	var inv struct{ Token string }
	jar2, _ := cookiejar.New(nil)
	for _, c := range []struct {
		client     *http.Client
		path, csrf string
		body, out  any
	}{
		{mum, "/api/v1/setup", "1", map[string]string{"token": tok, "name": "mum", "password": "correct horse"}, &si},
		{mum, "/api/v1/admin/invites", "", map[string]any{"uses": 1, "ttl_seconds": 600}, &inv},
		{&http.Client{Jar: jar2}, "/api/v1/invites/{invite}/accept", "1", map[string]string{"name": "kid", "password": "long enough"}, nil},
	} {
		if c.csrf == "" {
			c.csrf = si.CSRF
		}
		if err := post(c.client, b.url+strings.Replace(c.path, "{invite}", inv.Token, 1), c.csrf, c.body, c.out); err != nil {
			stop()
			return nil, err
		}
	}
	for name, pw := range map[string]string{"mum": "correct horse", "kid": "long enough"} {
		home := filepath.Join(b.work, "config-"+name)
		b.users[name] = home
		cmd := b.command(name, "login", b.url, "--name", name, "--password-stdin")
		cmd.Stdin = strings.NewReader(pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			stop()
			return nil, fmt.Errorf("hearth login: %v: %s", err, out)
		}
	}
	// TURN credentials for the bare relay baseline, as the CLI gets them.
	var creds struct {
		Token string `json:"token"`
	}
	raw, err := os.ReadFile(filepath.Join(b.users["mum"], "hearth", "cli.json"))
	if err == nil {
		err = json.Unmarshal(raw, &creds)
	}
	if err != nil {
		stop()
		return nil, err
	}
	req, _ := http.NewRequest("GET", b.url+"/api/v1/turn/credentials", nil)
	req.Header.Set("Authorization", "Bearer "+creds.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		stop()
		return nil, err
	}
	defer resp.Body.Close()
	var ice struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ice); err != nil {
		stop()
		return nil, err
	}
	b.ice = []webrtc.ICEServer{{URLs: ice.URLs, Username: ice.Username, Credential: ice.Credential}}
	return stop, nil
}

func post(c *http.Client, url, csrf string, body, out any) error {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hearth-CSRF", csrf)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("POST %s = %d %s", url, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (b *bench) command(user string, args ...string) *exec.Cmd {
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+b.users[user], "HEARTH_URL=", "HEARTH_TOKEN=")
	return cmd
}

type cliResult struct {
	transfer         time.Duration // first byte to the sender's exit
	firstByte        time.Duration // as the sender reports it
	sendRSS, recvRSS int64         // peak, bytes
}

var firstByteLine = regexp.MustCompile(`first byte (\d+) ms after accept`)

// cli sends file from mum's CLI to kid's and times it.
func (b *bench) cli(file string, relay bool) (cliResult, error) {
	var res cliResult
	out, err := os.MkdirTemp(b.work, "in-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(out)
	recv := b.command("kid", "receive", "--dir", out, "--yes")
	recvErr := &lines{}
	recv.Stderr, recv.Stdout = recvErr, io.Discard
	if err := recv.Start(); err != nil {
		return res, err
	}
	defer recv.Process.Kill()
	if !recvErr.wait("Waiting for files", 20*time.Second) {
		return res, fmt.Errorf("hearth receive did not start: %s", recvErr)
	}
	args := []string{"send", "--to", "kid", file}
	if relay {
		args = append(args, "--relay-only")
	}
	send := b.command("mum", args...)
	sendErr := &lines{}
	send.Stderr, send.Stdout = sendErr, io.Discard
	if err := send.Start(); err != nil {
		return res, err
	}
	// getrusage's ru_maxrss of a child counts the parent's memory it was
	// forked from, so the peaks are VmHWM read from /proc while it runs.
	var sendPeak, recvPeak atomic.Int64
	sampling := make(chan struct{})
	defer close(sampling)
	go func() {
		for {
			for _, p := range []struct {
				pid  int
				peak *atomic.Int64
			}{{send.Process.Pid, &sendPeak}, {recv.Process.Pid, &recvPeak}} {
				if hwm := vmHWM(p.pid); hwm > p.peak.Load() {
					p.peak.Store(hwm)
				}
			}
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- send.Wait() }()
	var first time.Time
	giveUp := time.Now().Add(time.Minute)
	for first.IsZero() {
		select {
		case err := <-done:
			return res, fmt.Errorf("hearth send: %v: %s", err, sendErr)
		case <-time.After(10 * time.Millisecond):
			first = sendErr.seen2("first byte")
		}
		if time.Now().After(giveUp) {
			send.Process.Kill()
			return res, fmt.Errorf("no first byte within a minute:\nsender: %s\nreceiver: %s", sendErr, recvErr)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			return res, fmt.Errorf("hearth send: %v: %s", err, sendErr)
		}
	case <-time.After(10 * time.Minute):
		send.Process.Kill()
		return res, errors.New("hearth send took more than 10 minutes")
	}
	res.transfer = time.Since(first)
	if err := recv.Wait(); err != nil {
		return res, fmt.Errorf("hearth receive: %v: %s", err, recvErr)
	}
	if m := firstByteLine.FindStringSubmatch(sendErr.String()); m != nil {
		ms, _ := strconv.Atoi(m[1])
		res.firstByte = time.Duration(ms) * time.Millisecond
	}
	res.sendRSS, res.recvRSS = sendPeak.Load(), recvPeak.Load()
	if relay && !strings.Contains(sendErr.String(), "path relay/") {
		return res, fmt.Errorf("the relay-only transfer did not use the relay: %s", sendErr)
	}
	return res, nil
}

// vmHWM is a process's peak resident memory in bytes (0 once it exited).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// lines collects a process's output and when each piece first appeared.
type lines struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen map[string]time.Time
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]time.Time{}
	}
	now := time.Now()
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		for _, key := range []string{"first byte", "Waiting for files"} {
			if _, ok := l.seen[key]; !ok && strings.Contains(sc.Text(), key) {
				l.seen[key] = now
			}
		}
	}
	return l.buf.Write(p)
}

func (l *lines) seen2(key string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[key]
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) wait(key string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !l.seen2(key).IsZero() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// bare sends n bytes over a bare data channel between two processes
// (this program with -role bare-send and -role bare-recv, like the two
// CLIs): 64 KiB messages under the flow control the protocol uses, no
// framing, hashing or disk. Their signaling goes through this process.
// It returns the time from the first message to the last byte's arrival.
func (b *bench) bare(n int64, relay bool) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	ice, _ := json.Marshal(b.ice)
	args := []string{"-n", strconv.FormatInt(n, 10), "-ice", string(ice)}
	if relay {
		args = append(args, "-relay")
	}
	send := exec.Command(self, append([]string{"-role", "bare-send"}, args...)...)
	recv := exec.Command(self, append([]string{"-role", "bare-recv"}, args...)...)
	var procs []*exec.Cmd
	outs := map[*exec.Cmd]*bufio.Scanner{}
	ins := map[*exec.Cmd]io.WriteCloser{}
	for _, c := range []*exec.Cmd{send, recv} {
		c.Stderr = os.Stderr
		in, err := c.StdinPipe()
		if err != nil {
			return 0, err
		}
		out, err := c.StdoutPipe()
		if err != nil {
			return 0, err
		}
		if err := c.Start(); err != nil {
			return 0, err
		}
		defer c.Process.Kill()
		procs = append(procs, c)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		outs[c], ins[c] = sc, in
	}
	var start, end atomic.Int64
	done := make(chan struct{}, 2) // the receiver's DONE, or a child's output ended
	for _, c := range procs {
		other := send
		if c == send {
			other = recv
		}
		go func() {
			defer func() { done <- struct{}{} }()
			for outs[c].Scan() {
				line := outs[c].Text()
				switch {
				case strings.HasPrefix(line, "START "):
					v, _ := strconv.ParseInt(strings.TrimPrefix(line, "START "), 10, 64)
					start.Store(v)
				case strings.HasPrefix(line, "DONE "):
					v, _ := strconv.ParseInt(strings.TrimPrefix(line, "DONE "), 10, 64)
					end.Store(v)
					return
				default:
					fmt.Fprintln(ins[other], line)
				}
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		return 0, errors.New("the bare transfer took more than 10 minutes")
	}
	if start.Load() == 0 || end.Load() == 0 {
		return 0, errors.New("the bare transfer did not finish")
	}
	return time.Duration(end.Load() - start.Load()), nil
}

// bareRole is one side of the bare transfer: signals as JSON lines on
// stdout and stdin; the sender prints START and the receiver DONE with
// Unix nanoseconds.
func bareRole(role string, n int64, relay bool, iceJSON string) error {
	cc := peer.ConnConfig{LoopbackOnly: true}
	if relay {
		if err := json.Unmarshal([]byte(iceJSON), &cc.ICEServers); err != nil {
			return err
		}
		cc.RelayOnly = true
	}
	var mu sync.Mutex
	emit := func(v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		os.Stdout.Write(append(b, '\n'))
		mu.Unlock()
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() (peer.Signal, error) {
		var s peer.Signal
		if !in.Scan() {
			return s, errors.New("signaling closed")
		}
		return s, json.Unmarshal(in.Bytes(), &s)
	}
	if role == "bare-recv" {
		first, err := next()
		if err != nil {
			return err
		}
		conn, err := peer.NewAnswerer(cc, *first.SDP, func(s peer.Signal) { emit(s) })
		if err != nil {
			return err
		}
		defer conn.Close()
		go func() {
			for {
				s, err := next()
				if err != nil {
					return
				}
				conn.Apply(s)
			}
		}()
		dc := <-conn.DataChannel()
		var got atomic.Int64
		all := make(chan struct{})
		conn.OnMessages(dc, func(m webrtc.DataChannelMessage) {
			if got.Add(int64(len(m.Data))) == n {
				close(all)
			}
		})
		select {
		case <-all:
			fmt.Printf("DONE %d\n", time.Now().UnixNano())
			return nil
		case <-time.After(10 * time.Minute):
			return fmt.Errorf("received %d of %d bytes", got.Load(), n)
		}
	}
	conn, dc, err := peer.NewOfferer(cc, func(s peer.Signal) { emit(s) })
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		for {
			s, err := next()
			if err != nil {
				return
			}
			conn.Apply(s)
		}
	}()
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	select {
	case <-opened:
	case <-time.After(30 * time.Second):
		return errors.New("the data channel did not open")
	}
	low := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(peer.LowThreshold)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	buf := make([]byte, peer.ChunkSize)
	rand.Read(buf)
	fmt.Printf("START %d\n", time.Now().UnixNano())
	for sent := int64(0); sent < n; {
		for dc.BufferedAmount() >= peer.MaxBuffered {
			select {
			case <-low:
			case <-time.After(time.Second):
			}
		}
		k := min(int64(len(buf)), n-sent)
		if err := dc.Send(buf[:k]); err != nil {
			return err
		}
		sent += k
	}
	// Stay until the parent has the receiver's DONE and ends us.
	time.Sleep(10 * time.Minute)
	return nil
}
