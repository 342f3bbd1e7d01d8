package main_test

// Process-level benchmarks of the built binary: start-to-ready time, idle
// memory, and memory with signed-in idle realtime clients. They start real
// `hearth serve` processes on 127.0.0.1 and so run only from `make bench`
// (.ci/bench), which sets HEARTH_BENCH=1 and HEARTH_BENCH_BIN; a plain
// `go test ./...` skips them. They measure the binary `make build` made
// (stripped, as shipped), not the one main_test.go's TestMain builds.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	benchStarts   = 20  // starts per start-to-ready series
	benchSessions = 100 // signed-in idle realtime clients
	benchUsers    = 10  // accounts the sessions are spread over
	benchPassword = "correct horse battery staple"
	readyTimeout  = 10 * time.Second // per start
	stopTimeout   = 10 * time.Second // SIGTERM to exit, then SIGKILL
	idleWait      = time.Second      // READY to the idle RSS reading
	settleWait    = 3 * time.Second  // last client connected to the RSS reading
)

// TestBenchProcess measures the binary named by HEARTH_BENCH_BIN and writes
// one "key<TAB>value" line per figure to HEARTH_BENCH_OUT (or the test log).
func TestBenchProcess(t *testing.T) {
	if os.Getenv("HEARTH_BENCH") != "1" {
		t.Skip("process benchmarks run from `make bench` (HEARTH_BENCH=1)")
	}
	bin := os.Getenv("HEARTH_BENCH_BIN")
	if bin == "" {
		t.Fatal("HEARTH_BENCH_BIN must name the hearth binary to measure (`make build` makes bin/hearth)")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("hearth binary: %v", err)
	}
	res := &results{t: t}
	defer res.flush(os.Getenv("HEARTH_BENCH_OUT"))

	// One unmeasured start so the binary is in the page cache.
	startHearth(t, bin, t.TempDir()).stop(t)

	// Start to READY=1, each in a new data directory (first run: the
	// database is created and the setup token written).
	var fresh, stops []time.Duration
	for range benchStarts {
		p := startHearth(t, bin, t.TempDir())
		fresh = append(fresh, p.ready)
		stops = append(stops, p.stop(t))
	}
	res.durations("ready_fresh", fresh)
	res.durations("stop", stops)

	// Start to READY=1 on an existing data directory.
	warmDir := t.TempDir()
	startHearth(t, bin, warmDir).stop(t)
	var warm []time.Duration
	for range benchStarts {
		p := startHearth(t, bin, warmDir)
		warm = append(warm, p.ready)
		p.stop(t)
	}
	res.durations("ready_warm", warm)

	// Idle memory, then memory with signed-in idle realtime clients, on one
	// process.
	dir := t.TempDir()
	p := startHearth(t, bin, dir)
	time.Sleep(idleWait)
	rss, hwm := memory(t, p.pid())
	res.add("idle_rss_kib", rss)
	res.add("idle_hwm_kib", hwm)

	cookies := signIn(t, bin, dir, p.addr)
	rss, _ = memory(t, p.pid())
	res.add("signed_in_rss_kib", rss)
	clients := openRealtime(t, p.addr, cookies)
	time.Sleep(settleWait)
	m := scrapeMetrics(t, p.addr)
	if got := m["hearth_realtime_connections"]; got != benchSessions {
		t.Fatalf("hearth_realtime_connections = %v, want %d", got, benchSessions)
	}
	rss, hwm = memory(t, p.pid())
	res.add("sessions", benchSessions)
	res.add("sessions_rss_kib", rss)
	res.add("sessions_hwm_kib", hwm)
	res.add("sessions_heap_kib", m["hearth_heap_bytes"]/1024)
	res.add("sessions_goroutines", m["hearth_goroutines"])
	for _, c := range clients {
		c.Close(websocket.StatusNormalClosure, "")
	}
	p.stop(t)
}

// results collects the figures.
type results struct {
	t     *testing.T
	lines []string
}

func (r *results) add(key string, v float64) {
	r.lines = append(r.lines, fmt.Sprintf("%s\t%.6g", key, v))
}

// durations records the median and 90th percentile (nearest rank) in ms.
func (r *results) durations(key string, ds []time.Duration) {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	slices.Sort(ms)
	n := len(ms)
	median := (ms[(n-1)/2] + ms[n/2]) / 2
	p90 := ms[int(math.Ceil(0.9*float64(n)))-1]
	r.add(key+"_median_ms", median)
	r.add(key+"_p90_ms", p90)
	r.add(key+"_max_ms", ms[n-1])
	r.add(key+"_n", float64(n))
}

func (r *results) flush(path string) {
	if len(r.lines) == 0 {
		return
	}
	out := strings.Join(r.lines, "\n") + "\n"
	r.t.Log("figures:\n" + out)
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		r.t.Errorf("write figures: %v", err)
	}
}

// proc is a running `hearth serve`.
type proc struct {
	cmd    *exec.Cmd
	addr   string        // the HTTP listener, from the READY status line
	ready  time.Duration // exec to READY=1
	done   chan struct{} // closed when the process has exited
	stderr *capped
	once   sync.Once
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// childEnv is this process's environment without anything that would
// configure the child: HEARTH_* settings, systemd's variables.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "HEARTH_"), strings.HasPrefix(k, "LISTEN_"), strings.HasPrefix(k, "WATCHDOG_"),
			k == "NOTIFY_SOCKET", k == "JOURNAL_STREAM":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startHearth execs the binary with NOTIFY_SOCKET pointing at a datagram
// socket of ours and waits for READY=1. The process is killed when the test
// ends, whatever happens.
func startHearth(t *testing.T, bin, data string) *proc {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen for sd_notify: %v", err)
	}
	defer conn.Close()

	p := &proc{done: make(chan struct{}), stderr: &capped{max: 64 << 10}}
	p.cmd = exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--tls", "off",
		"--mdns=false", "--tailnet=false", "--turn-listen", "127.0.0.1:0")
	p.cmd.Env = childEnv("NOTIFY_SOCKET=" + sock)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr

	type note struct {
		msg string
		at  time.Time
	}
	notes := make(chan note, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed when startHearth returns
			}
			notes <- note{string(buf[:n]), time.Now()}
		}
	}()

	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		select {
		case n := <-notes:
			if !hasLine(n.msg, "READY=1") {
				continue
			}
			p.ready = n.at.Sub(start)
			for line := range strings.SplitSeq(n.msg, "\n") {
				if status, ok := strings.CutPrefix(line, "STATUS=serving on "); ok {
					p.addr, _, _ = strings.Cut(status, ";")
				}
			}
			if _, _, err := net.SplitHostPort(p.addr); err != nil {
				t.Fatalf("READY=1 came without a \"serving on ADDR\" status: %q", n.msg)
			}
			return p
		case <-p.done:
			t.Fatalf("hearth serve exited before READY=1 (%v); its output:\n%s", p.cmd.ProcessState, p.stderr)
		case <-deadline.C:
			t.Fatalf("no READY=1 within %v; hearth's output:\n%s", readyTimeout, p.stderr)
		}
	}
}

func hasLine(msg, want string) bool {
	for line := range strings.SplitSeq(msg, "\n") {
		if line == want {
			return true
		}
	}
	return false
}

// stop sends SIGTERM and waits for the exit (SIGKILL after stopTimeout). It
// returns how long the graceful stop took.
func (p *proc) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("stop hearth: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.kill()
		t.Fatalf("hearth did not stop within %v of SIGTERM; its output:\n%s", stopTimeout, p.stderr)
	}
	took := time.Since(start)
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		t.Fatalf("hearth exited with %v after SIGTERM; its output:\n%s", st, p.stderr)
	}
	return took
}

// kill ends the process if it still runs and waits for it.
func (p *proc) kill() {
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// memory returns VmRSS and VmHWM (peak RSS) of pid in KiB.
func memory(t *testing.T, pid int) (rss, hwm float64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read memory of %d: %v", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	if rss == 0 {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, hwm
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// post sends JSON and decodes a JSON answer, failing unless the status is
// want. It returns the session cookie, if the answer set one.
func post(t *testing.T, url string, hdr http.Header, body, out any, want int) string {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		t.Fatalf("POST %s = %d %s, want %d", url, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("POST %s: decode %q: %v", url, raw, err)
		}
	}
	for _, c := range resp.Cookies() {
		if c.Name == "hearth_session" {
			return c.Value
		}
	}
	return ""
}

// signIn sets the appliance up with the token from `hearth admin
// setup-token`, adds accounts, and signs in benchSessions times spread over
// them. It returns the session cookies.
func signIn(t *testing.T, bin, data, addr string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "admin", "setup-token", "--data", data)
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("hearth admin setup-token: %v %s", err, stderr)
	}
	token := strings.TrimSpace(string(out))

	base := "http://" + addr
	pre := http.Header{"X-Hearth-CSRF": {"1"}}
	var setup struct {
		CSRF string `json:"csrf"`
	}
	adminCookie := post(t, base+"/api/v1/setup", pre,
		map[string]string{"token": token, "name": "user0", "password": benchPassword}, &setup, http.StatusCreated)
	if adminCookie == "" || setup.CSRF == "" {
		t.Fatal("POST /api/v1/setup set no session cookie or CSRF token")
	}
	asAdmin := http.Header{"X-Hearth-CSRF": {setup.CSRF}, "Cookie": {"hearth_session=" + adminCookie}}
	for i := 1; i < benchUsers; i++ {
		post(t, base+"/api/v1/admin/users", asAdmin,
			map[string]string{"name": fmt.Sprintf("user%d", i), "password": benchPassword}, nil, http.StatusCreated)
	}
	cookies := make([]string, benchSessions)
	for i := range cookies {
		c := post(t, base+"/api/v1/auth/login", pre,
			map[string]string{"name": fmt.Sprintf("user%d", i%benchUsers), "password": benchPassword}, nil, http.StatusOK)
		if c == "" {
			t.Fatal("POST /api/v1/auth/login set no session cookie")
		}
		cookies[i] = c
	}
	return cookies
}

// openRealtime opens one realtime WebSocket per cookie, waits for each
// one's hello, and keeps reading (so pings are answered) until closed.
func openRealtime(t *testing.T, addr string, cookies []string) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, 0, len(cookies))
	t.Cleanup(func() {
		for _, c := range conns {
			c.CloseNow()
		}
	})
	for _, cookie := range cookies {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/v1/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"Cookie": {"hearth_session=" + cookie}, "Origin": {"http://" + addr}},
		})
		if err != nil {
			cancel()
			t.Fatalf("open realtime connection %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
		_, msg, err := c.Read(ctx)
		cancel()
		if err != nil || !bytes.Contains(msg, []byte(`"hello"`)) {
			t.Fatalf("realtime connection %d: first message %q, %v; want a hello", len(conns), msg, err)
		}
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	return conns
}

// scrapeMetrics reads the unlabelled samples of GET /metrics (allowed from
// loopback without a session).
func scrapeMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			m[name] = v
		}
	}
	return m
}
