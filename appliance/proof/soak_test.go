package proof_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
	"github.com/pion/webrtc/v4"
)

// sample is one reading of the server's footprint.
type sample struct {
	at         time.Duration
	rssKB      int
	goroutines int
	note       string
}

func readRSS(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

func readGoroutines(ctx context.Context, base string) int {
	var raw []byte
	c := newAPI(base)
	if c.send(ctx, "GET", "/metrics", "", nil, &raw) != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "hearth_goroutines "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}

// plot draws samples as two ASCII bar charts.
func plot(samples []sample) string {
	var b strings.Builder
	for _, series := range []struct {
		name string
		val  func(sample) int
		unit string
	}{{"RSS", func(s sample) int { return s.rssKB / 1024 }, "MiB"}, {"goroutines", func(s sample) int { return s.goroutines }, ""}} {
		top := 1
		for _, s := range samples {
			top = max(top, series.val(s))
		}
		fmt.Fprintf(&b, "%s over the soak (each # = %.1f%s):\n", series.name, float64(top)/50, series.unit)
		for _, s := range samples {
			v := series.val(s)
			fmt.Fprintf(&b, "%7s %6d%s |%s %s\n", s.at.Truncate(time.Second), v, series.unit, strings.Repeat("#", v*50/top), s.note)
		}
	}
	return b.String()
}

// drift compares the mean of the last third of samples with the third
// after warm-up (the first sixth is warm-up).
func drift(samples []sample, val func(sample) int) (from, to float64) {
	n := len(samples)
	if n < 6 {
		return 0, 0
	}
	mean := func(ss []sample) float64 {
		t := 0
		for _, s := range ss {
			t += val(s)
		}
		return float64(t) / float64(len(ss))
	}
	return mean(samples[n/6 : n/6+n/3]), mean(samples[n-n/3:])
}

// TestSoak is the long run (`make soak`, HEARTH_SOAK=10m): 1,000 realtime
// clients (chat + presence) across ten users, a 20-person voice room (half
// of it through the TURN relay) and a poster, against the real binary,
// with network blips; then a restart. Every client must get every message
// exactly once; RSS and goroutines are sampled and plotted.
func TestSoak(t *testing.T) {
	length := soakLength()
	if length == 0 {
		t.Skip("the soak runs with HEARTH_SOAK=DURATION (make soak)")
	}
	nClients := envInt("HEARTH_SOAK_CLIENTS", 1000)
	rate := envInt("HEARTH_SOAK_RATE", 4) // messages a second
	nVoice := envInt("HEARTH_SOAK_VOICE", 20)
	every := min(10*time.Second, max(time.Second, length/30))
	// A browser reports idle after minutes, not seconds: with 1,000
	// connections each change fans out to all of them.
	presence := time.Duration(envInt("HEARTH_SOAK_PRESENCE_SECONDS", 30)) * time.Second

	data := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, data, addr)
	adminC, _ := setupAdmin(t, p.url(), data, "mum", pw)
	ch := adminC.createChannel(t, map[string]any{"name": "hall"})
	room := adminC.createChannel(t, map[string]any{"name": "call", "voice": true})
	users := []*apiClient{adminC}
	for i := range 9 {
		m, _ := adminC.invite(t, fmt.Sprintf("member%d", i), pw)
		users = append(users, m)
	}
	var tokens []string
	for _, u := range users {
		tokens = append(tokens, u.token(t).bearer)
	}
	api := newAPI(p.url())
	api.bearer = tokens[0]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	clients := make([]*streamClient, nClients)
	start := time.Now()
	for i := range clients {
		clients[i] = newStreamClient(addr, tokens[i%len(tokens)])
		wg.Add(1)
		go func() { defer wg.Done(); clients[i].run(ctx, presence) }()
		if i%50 == 49 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%d realtime clients started in %v", nClients, time.Since(start))

	// The voice room: each participant on its own realtime connection.
	var voices []*voicetest.Client
	for i := range nVoice {
		// Each participant is its own device (session): a session is in
		// one call at a time.
		vc, err := soakVoice(ctx, t, addr, users[i%len(users)].token(t).bearer, i%2 == 1)
		if err != nil {
			t.Fatalf("voice client %d: %v", i, err)
		}
		jctx, jcancel := context.WithTimeout(ctx, 30*time.Second)
		err = vc.Join(jctx, room.ID, voicetest.JoinOptions{Muted: i >= 4})
		jcancel()
		if err != nil {
			t.Fatalf("voice client %d join: %v", i, err)
		}
		voices = append(voices, vc)
	}
	defer func() {
		for _, v := range voices {
			v.Close()
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n := 0
		for _, v := range voices {
			if v.Connected() {
				n++
			}
		}
		if n == len(voices) {
			break
		}
	}
	for i, v := range voices {
		if i < 4 {
			v.Talk(true) // four speakers; the rest listen
		}
		if !v.Connected() {
			t.Logf("voice client %d (TURN %v) not connected: pair %q, errors %v", i, i%2 == 1, v.SelectedPair(), v.Errors())
		}
	}

	po := &poster{api: api, ch: ch.ID, prefix: "s"}
	var keys []string
	var samples []sample
	var smu sync.Mutex
	sampleNow := func(note string) {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		s := sample{at: time.Since(start), rssKB: readRSS(p.cmd.Process.Pid), goroutines: readGoroutines(sctx, p.url()), note: note}
		smu.Lock()
		samples = append(samples, s)
		smu.Unlock()
	}
	sampleNow("start")
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	nextSample, nextBlip := time.Now().Add(every), time.Now().Add(length/5)
	end := time.Now().Add(length)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		keys = append(keys, fmt.Sprintf("s-%d", i))
		go po.post(ctx, i)
		note := ""
		if time.Now().After(nextBlip) {
			for j := i % 10; j < len(clients); j += 10 {
				// A tenth of the clients lose their network. Cutting a
				// connection can wait for a write in progress: never hold
				// up the poster for it.
				go clients[j].drop()
			}
			note = "blip: 10% of clients cut"
			nextBlip = nextBlip.Add(length / 5)
		}
		if time.Now().After(nextSample) {
			go sampleNow(note) // never holds up the poster
			nextSample = nextSample.Add(every)
		}
	}
	var voiceRecv uint64
	connected := 0
	for _, v := range voices {
		voiceRecv += v.Total()
		if v.Connected() {
			connected++
		}
	}
	// The restart: every client must resume without loss.
	p.stop()
	p = startProc(t, data, addr)
	sampleNow("after restart")
	waitDelivered(clients, keys, 2*time.Minute)
	r := checkDelivery(clients, keys)
	sampleNow("end")
	slices.SortFunc(samples, func(a, b sample) int { return cmp.Compare(a.at, b.at) })
	smu.Lock()
	defer smu.Unlock()
	t.Logf("soak %v: %d clients × %d messages (%d deliveries), missing %d, duplicated %d, duplicate events %d, resyncs %d, connections %d; chat delivery p50 %v p99 %v max %v",
		length, r.clients, r.keys, r.clients*r.keys, r.missing, r.duplicated, r.dupEvents, r.resyncs, r.connects, r.p50, r.p99, r.max)
	t.Logf("voice: %d participants (%d through TURN), %d connected at the end, %d packets received", len(voices), len(voices)/2, connected, voiceRecv)
	// Drift is read over the load, before the restart.
	load := samples
	for i, s := range samples {
		if s.note == "after restart" {
			load = samples[:i]
			break
		}
	}
	rf, rt := drift(load, func(s sample) int { return s.rssKB })
	gf, gt := drift(load, func(s sample) int { return s.goroutines })
	t.Logf("drift after warm-up: RSS %.0f → %.0f KiB (%+.1f%%), goroutines %.0f → %.0f\n%s", rf, rt, 100*(rt-rf)/max(rf, 1), gf, gt, plot(samples))
	if r.missing+r.duplicated+r.dupEvents+r.resyncs > 0 {
		t.Errorf("messages lost or repeated: %s", r.firstProblem)
	}
	if len(voices) > 0 && voiceRecv == 0 {
		t.Errorf("the voice room carried no audio")
	}
	if connected < len(voices) {
		t.Errorf("%d of %d voice participants connected at the end", connected, len(voices))
	}
	cancel()
	wg.Wait()
	p.stop()
}

// soakVoice is a voice participant speaking over its own realtime
// connection; viaTURN makes it reach the appliance through its relay.
func soakVoice(ctx context.Context, t *testing.T, addr, bearer string, viaTURN bool) (*voicetest.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + bearer}}})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	var wmu sync.Mutex
	cfg := voicetest.Config{Send: func(_ context.Context, typ string, data json.RawMessage) error {
		// Not the caller's context: a write cut short by a cancelled
		// context drops the whole connection.
		b, _ := json.Marshal(map[string]any{"type": typ, "data": data})
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		wmu.Lock()
		defer wmu.Unlock()
		return ws.Write(wctx, websocket.MessageText, b)
	}}
	if viaTURN {
		api := newAPI("http://" + addr)
		api.bearer = bearer
		var cred struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		}
		if err := api.do(ctx, "GET", "/api/v1/turn/credentials", nil, &cred); err != nil {
			return nil, err
		}
		var urls []string
		for _, u := range cred.URLs {
			if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=udp") {
				urls = append(urls, u)
			}
		}
		cfg.ICEServers = []webrtc.ICEServer{{URLs: urls, Username: cred.Username, Credential: cred.Credential}}
		cfg.RelayOnly = true
	}
	vc, err := voicetest.New(cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var ev struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			if json.Unmarshal(b, &ev) == nil && strings.HasPrefix(ev.Type, "voice.") {
				vc.Deliver(ev.Type, ev.Data)
			}
		}
	}()
	return vc, nil
}
