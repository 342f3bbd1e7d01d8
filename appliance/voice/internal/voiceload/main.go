// Command voiceload measures the voice SFU under load (.ci/bench-voice):
// it runs the SFU (voice.Service) in a child process of its own, so that
// the SFU's CPU and memory can be read from /proc, and drives it from this
// process with pion clients on loopback that speak the realtime protocol
// over a local TCP connection and send synthetic Opus at 50 packets a
// second. It prints a table.
//
//	voiceload [-measure 5s] [-budget 200s]   run the scenarios, print the table
//	voiceload -sfu                           the SFU process (started by the above)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
	"golang.org/x/sys/unix"
)

// frame is one realtime message on the signaling connection, tagged with
// the session it belongs to.
type frame struct {
	Session string          `json:"s,omitempty"`
	Type    string          `json:"t"`
	Data    json.RawMessage `json:"d,omitempty"`
}

const statsType = "bench.stats"

func main() {
	sfu := flag.Bool("sfu", false, "run the SFU process")
	measure := flag.Duration("measure", 5*time.Second, "measurement window per scenario")
	warmup := flag.Duration("warmup", 2*time.Second, "warm-up before measuring")
	budget := flag.Duration("budget", 200*time.Second, "stop searching for the largest room after this long in all")
	maxRoom := flag.Int("max-room", 1000, "largest room to try")
	flag.Parse()
	var err error
	if *sfu {
		err = runSFU()
	} else {
		err = runBench(*measure, *warmup, *budget, *maxRoom)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "voiceload:", err)
		os.Exit(1)
	}
}

// runSFU serves one driver: it prints the signaling address, then runs
// voice.Service until the driver disconnects.
func runSFU() error {
	if prof := os.Getenv("VOICELOAD_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if prof := os.Getenv("VOICELOAD_MEMPROFILE"); prof != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if f, err := os.Create(prof); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("LISTEN %s\n", l.Addr())
	conn, err := l.Accept()
	l.Close()
	if err != nil {
		return err
	}
	defer conn.Close()

	out := make(chan frame, 1<<16)
	var dropped, states int
	var mu sync.Mutex
	publish := func(ev hub.Event) {
		data, err := json.Marshal(ev.Data) // as the hub does, once per event
		if err != nil {
			return
		}
		if len(ev.Sessions) == 0 {
			mu.Lock()
			states++ // channel audience: the driver's clients need none
			mu.Unlock()
			return
		}
		for _, s := range ev.Sessions {
			select {
			case out <- frame{Session: s, Type: ev.Type, Data: data}:
			default:
				mu.Lock()
				dropped++
				mu.Unlock()
			}
		}
	}
	svc, err := voice.New(voice.Config{UDP: udp, Publish: publish, CanJoin: func(string, string) bool { return true },
		MaxParticipants: 5000, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer svc.Close()

	done := make(chan struct{})
	go func() {
		w := bufio.NewWriter(conn)
		enc := json.NewEncoder(w)
		for {
			select {
			case <-done:
				return
			case f := <-out:
				if enc.Encode(f) != nil {
					return
				}
				for len(out) > 0 && w.Buffered() < 1<<16 {
					if enc.Encode(<-out) != nil {
						return
					}
				}
				if w.Flush() != nil {
					return
				}
			}
		}
	}()
	defer close(done)

	// One queue per session, like the hub's per-connection read loop.
	queues := map[string]chan frame{}
	var wg sync.WaitGroup
	defer wg.Wait()
	dec := json.NewDecoder(bufio.NewReaderSize(conn, 1<<16))
	for {
		var f frame
		if err := dec.Decode(&f); err != nil {
			break
		}
		if f.Type == statsType {
			b, _ := json.Marshal(svc.Stats())
			out <- frame{Type: statsType, Data: b}
			continue
		}
		q := queues[f.Session]
		if q == nil {
			q = make(chan frame, 1024)
			queues[f.Session] = q
			c := hub.Client{UserID: f.Session, SessionID: f.Session, Name: f.Session}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range q {
					if err := svc.Handle(context.Background(), c, f.Type, f.Data); err != nil {
						b, _ := json.Marshal(map[string]string{"code": voice.Code(err), "message": err.Error()})
						out <- frame{Session: c.SessionID, Type: "error", Data: b}
					}
				}
			}()
		}
		q <- f
	}
	for _, q := range queues {
		close(q)
	}
	return nil
}

// sfuProcess is a running SFU child and the driver's end of its
// signaling connection.
type sfuProcess struct {
	cmd   *exec.Cmd
	conn  net.Conn
	wmu   sync.Mutex
	enc   *json.Encoder
	mu    sync.Mutex
	subs  map[string]*voicetest.Client
	stats chan voice.Stats
	done  chan struct{}
}

func startSFU(pin *cpus) (*sfuProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-sfu")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := pin.startPinned(cmd); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("sfu process did not start: %q %v", line, err)
	}
	conn, err := net.Dial("tcp4", addr)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	p := &sfuProcess{cmd: cmd, conn: conn, enc: json.NewEncoder(conn), subs: map[string]*voicetest.Client{},
		stats: make(chan voice.Stats, 1), done: make(chan struct{})}
	go p.read()
	return p, nil
}

func (p *sfuProcess) read() {
	defer close(p.done)
	dec := json.NewDecoder(bufio.NewReaderSize(p.conn, 1<<16))
	for {
		var f frame
		if err := dec.Decode(&f); err != nil {
			return
		}
		if f.Type == statsType {
			var st voice.Stats
			if json.Unmarshal(f.Data, &st) == nil {
				p.stats <- st
			}
			continue
		}
		p.mu.Lock()
		c := p.subs[f.Session]
		p.mu.Unlock()
		if c != nil {
			c.Deliver(f.Type, f.Data)
		}
	}
}

func (p *sfuProcess) send(f frame) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.enc.Encode(f)
}

// client makes a client for session whose messages go to the SFU.
func (p *sfuProcess) client(session string, latency bool) (*voicetest.Client, error) {
	c, err := voicetest.New(voicetest.Config{RecordLatency: latency,
		Send: func(_ context.Context, typ string, data json.RawMessage) error {
			return p.send(frame{Session: session, Type: typ, Data: data})
		}})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.subs[session] = c
	p.mu.Unlock()
	return c, nil
}

func (p *sfuProcess) Stats(ctx context.Context) (voice.Stats, error) {
	if err := p.send(frame{Type: statsType}); err != nil {
		return voice.Stats{}, err
	}
	select {
	case st := <-p.stats:
		return st, nil
	case <-ctx.Done():
		return voice.Stats{}, ctx.Err()
	case <-p.done:
		return voice.Stats{}, errors.New("sfu process went away")
	}
}

// cpus pins the SFU to CPU 0 and the load generator to the others, as on
// an appliance whose clients are other devices. With one CPU, nothing is
// pinned and they share it.
type cpus struct {
	sfu, driver unix.CPUSet
}

func pinned() bool { return runtime.NumCPU() >= 2 }

// pinDriver moves every thread of this process off CPU 0.
func pinDriver() (*cpus, error) {
	c := &cpus{}
	if !pinned() {
		return c, nil
	}
	c.sfu.Set(0)
	for i := 1; i < runtime.NumCPU(); i++ {
		c.driver.Set(i)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &c.driver); err != nil && !errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pin the load generator: %w", err)
		}
	}
	return c, nil
}

// startPinned starts cmd on CPU 0: the child inherits the affinity of the
// thread that forks it (and sizes GOMAXPROCS by it).
func (c *cpus) startPinned(cmd *exec.Cmd) error {
	if !pinned() {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.SchedSetaffinity(0, &c.sfu); err != nil {
		return fmt.Errorf("pin the SFU: %w", err)
	}
	err := cmd.Start()
	if err2 := unix.SchedSetaffinity(0, &c.driver); err == nil && err2 != nil {
		err = err2
	}
	return err
}

// usage is the SFU process's CPU time and memory from /proc.
type usage struct {
	cpu      time.Duration
	rss, hwm int64 // bytes
}

func procUsage(pid int) (usage, error) {
	var u usage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(utime+stime) * (time.Second / 100) // USER_HZ
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.hwm = kb << 10
		}
	}
	return u, nil
}

// result is one scenario's figures.
type result struct {
	name                string
	speakers, listeners int
	cpu                 float64 // share of one core
	rss, hwm            int64
	fwdRate             float64 // packets forwarded per second
	delivered           float64 // received / expected
	p50, p99, max       time.Duration
	e2e50, e2e99        time.Duration
	lostOut, invalid    uint64
	setup               time.Duration
}

// scenario runs speakers talking to a room of speakers+listeners.
func scenario(pin *cpus, name string, speakers, listeners int, warmup, measure time.Duration) (res result, err error) {
	res = result{name: name, speakers: speakers, listeners: listeners}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	sfu, err := startSFU(pin)
	if err != nil {
		return res, err
	}
	var clients []*voicetest.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
		sfu.conn.Close()
		sfu.cmd.Wait()
	}()
	join := func(n int, prefix string, muted bool) ([]*voicetest.Client, error) {
		out := make([]*voicetest.Client, n)
		errs := make(chan error, n)
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for i := range n {
			c, err := sfu.client(fmt.Sprintf("%s%d", prefix, i), true)
			if err != nil {
				return nil, err
			}
			out[i] = c
			clients = append(clients, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := c.Join(ctx, "room", voicetest.JoinOptions{Muted: muted}); err != nil {
					errs <- err
					return
				}
				if err := voicetest.WaitFor(ctx, c.Connected); err != nil {
					errs <- fmt.Errorf("%s%d not connected: %w", prefix, i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		return out, <-errs
	}
	ls, err := join(listeners, "listener", true)
	if err != nil {
		return res, err
	}
	ss, err := join(speakers, "speaker", false)
	if err != nil {
		return res, err
	}
	for _, s := range ss {
		s.Talk(true)
	}
	everyone := append(slices.Clone(ls), ss...)
	// Ready when everyone hears every speaker but themselves.
	err = voicetest.WaitFor(ctx, func() bool {
		for _, c := range everyone {
			for _, s := range ss {
				if n, _ := c.Received(s.ID()); s != c && n == 0 {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return res, fmt.Errorf("audio not flowing to everyone: %w", err)
	}
	res.setup = time.Since(start)
	time.Sleep(warmup)

	pid := sfu.cmd.Process.Pid
	u0, err := procUsage(pid)
	if err != nil {
		return res, err
	}
	st0, err := sfu.Stats(ctx)
	if err != nil {
		return res, err
	}
	var recv0 uint64
	for _, c := range everyone {
		recv0 += c.Total()
		c.TakeLatencies()
	}
	t0 := time.Now()
	time.Sleep(measure)
	u1, err := procUsage(pid)
	if err != nil {
		return res, err
	}
	wall := time.Since(t0)
	st1, err := sfu.Stats(ctx)
	if err != nil {
		return res, err
	}
	var recv1 uint64
	var lat []time.Duration
	for _, c := range everyone {
		recv1 += c.Total()
		lat = append(lat, c.TakeLatencies()...)
	}
	res.cpu = float64(u1.cpu-u0.cpu) / float64(wall)
	res.rss, res.hwm = u1.rss, u1.hwm
	res.fwdRate = float64(st1.PacketsForwarded-st0.PacketsForwarded) / wall.Seconds()
	expected := float64(speakers*(speakers-1+listeners)) * wall.Seconds() / voicetest.PacketInterval.Seconds()
	res.delivered = float64(recv1-recv0) / expected
	h := st1.Latency.Sub(st0.Latency)
	res.p50, res.p99, res.max = h.Quantile(0.5), h.Quantile(0.99), h.Quantile(1)
	slices.Sort(lat)
	if len(lat) > 0 {
		res.e2e50, res.e2e99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	res.lostOut = st1.PacketsLostOut - st0.PacketsLostOut
	res.invalid = st1.PacketsInvalid - st0.PacketsInvalid
	return res, nil
}

func runBench(measure, warmup, budget time.Duration, maxRoom int) error {
	began := time.Now()
	loadAvg := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			loadAvg = strings.Join(f[:3], " ")
		}
	}
	pin, err := pinDriver()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "==> voice SFU bench: %v warm-up, %v measured per scenario\n", warmup, measure)
	var rows []result
	run := func(name string, speakers, listeners int) (result, error) {
		fmt.Fprintf(os.Stderr, "==> %s\n", name)
		r, err := scenario(pin, name, speakers, listeners, warmup, measure)
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, r)
		return r, nil
	}
	for _, sc := range []struct {
		name                string
		speakers, listeners int
	}{
		{"1 speaker -> 10", 1, 10},
		{"1 speaker -> 50", 1, 50},
		{"1 speaker -> 100", 1, 100},
		{"10 speakers, room of 20", 10, 10},
	} {
		if _, err := run(sc.name, sc.speakers, sc.listeners); err != nil {
			return err
		}
	}
	// The largest room (one speaker) with p99 added latency <= 5 ms, as
	// far as the load generator keeps up (it has the other CPUs).
	largest, stop := 101, "sizes exhausted"
	for _, n := range []int{150, 200, 300, 400, 600, 800} {
		if n > maxRoom {
			stop = "max-room"
			break
		}
		// A room of n takes about n/30 s to set up, plus the windows.
		if time.Since(began)+warmup+measure+time.Duration(n)*time.Second/30 > budget {
			stop = "time budget"
			break
		}
		r, err := run(fmt.Sprintf("1 speaker -> %d", n-1), 1, n-1)
		if err != nil {
			stop = err.Error()
			break
		}
		if r.p99 > 5*time.Millisecond {
			stop = fmt.Sprintf("%d: p99 %s", n, fmtDur(r.p99))
			break
		}
		if r.delivered < 0.9 {
			stop = fmt.Sprintf("%d: the load generator fell behind (%.0f%% delivered)", n, 100*r.delivered)
			break
		}
		largest = n
	}
	if rows[2].p99 > 5*time.Millisecond {
		largest = 0
	}
	printTable(rows, largest, stop, loadAvg, time.Since(began))
	return nil
}

func printTable(rows []result, largest int, stop, loadAvg string, took time.Duration) {
	w := os.Stdout
	fmt.Fprintln(w, "Voice SFU (appliance/voice) on loopback: synthetic Opus, 50 packets/s per speaker, 80-byte payloads;")
	if pinned() {
		fmt.Fprintf(w, "the SFU in its own process pinned to CPU 0 (CPU from /proc: 100%% = one core); pion clients in another on CPUs 1-%d.\n", runtime.NumCPU()-1)
	} else {
		fmt.Fprintln(w, "the SFU in its own process (CPU from /proc: 100% = one core); pion clients in another, sharing the one CPU.")
	}
	fmt.Fprintln(w, "SFU added = packet read (decrypted) -> copy written (encrypted, sent), per listener copy; e2e = client send -> client receive.")
	fmt.Fprintf(w, "machine: %d CPUs, load average %s at the start (other work on the machine shows in the latencies).\n", runtime.NumCPU(), loadAvg)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-26s %6s %7s %8s %9s %9s %9s %9s %9s %9s %9s  %s\n",
		"scenario", "people", "SFU CPU", "RSS MB", "fwd pkt/s", "delivered", "SFU p50", "SFU p99", "e2e p50", "e2e p99", "setup", "target")
	for _, r := range rows {
		target := ""
		if r.speakers == 1 && r.listeners == 50 {
			target = "CPU < 25%, p99 <= 2 ms: "
			if r.cpu < 0.25 && r.p99 <= 2*time.Millisecond {
				target += "ok"
			} else {
				target += "MISS"
			}
		}
		fmt.Fprintf(w, "%-26s %6d %6.1f%% %8.1f %9.0f %8.1f%% %9s %9s %9s %9s %8.1fs  %s\n",
			r.name, r.speakers+r.listeners, 100*r.cpu, float64(r.rss)/1e6, r.fwdRate, 100*r.delivered,
			fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.e2e50), fmtDur(r.e2e99), r.setup.Seconds(), target)
	}
	fmt.Fprintln(w)
	if largest > 0 {
		fmt.Fprintf(w, "largest one-speaker room with SFU p99 <= 5 ms: %d people (next: %s)\n", largest, stop)
	} else {
		fmt.Fprintf(w, "largest one-speaker room with SFU p99 <= 5 ms: under 101 people\n")
	}
	fmt.Fprintf(w, "bench took %.0fs\n", took.Seconds())
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}
