// Command chatload is the load generator of Hearth's chat benchmarks
// (.ci/bench-chat, part of `make bench`). It drives a running `hearth serve`
// — or, as the reference, a Centrifugo server — from its own process, over
// HTTP and WebSockets on the loopback interface only, and writes its
// figures as "key<TAB>value" lines.
//
//	chatload freeport
//	chatload wait URL
//	chatload hearth-prepare -url URL -setup-token T -sessions 1000 -out FILE
//	chatload hearth-post -url URL -sessions FILE -senders 50 -duration 10s
//	chatload fanout -target hearth -url URL -sessions FILE -pid PID -clients 1000 -rate 100 -duration 20s
//	chatload centrifugo-config -port P -out FILE
//	chatload fanout -target centrifugo -url URL -config FILE -pid PID -clients 1000 -rate 100 -duration 20s
//
// Every loop is bounded in count and time, and every address must be on
// the loopback interface.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	password      = "correct horse battery staple"
	dialTimeout   = 10 * time.Second
	httpTimeout   = 30 * time.Second
	maxFrameBytes = 1 << 20
	// marker starts the text of every timed message; the number after it
	// is the message's sequence number, then its send time.
	marker = `"text":"chatload `
	// filler makes the timed messages as long as an ordinary chat line.
	filler = "see you at dinner, the bus was late again so I will be home at seven"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: chatload freeport|wait|hearth-prepare|hearth-post|fanout|centrifugo-config [flags]")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "freeport":
		return freePort()
	case "wait":
		if len(args) != 1 {
			return errors.New("usage: chatload wait URL")
		}
		return waitHealthy(args[0], 20*time.Second)
	case "hearth-prepare":
		return hearthPrepare(args)
	case "hearth-post":
		return hearthPost(args)
	case "fanout":
		return fanout(args)
	case "centrifugo-config":
		return centrifugoConfig(args)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// --- Plumbing -------------------------------------------------------------

// loopback refuses any URL whose host is not on the loopback interface.
func loopback(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if u.Scheme != "http" || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return nil, fmt.Errorf("url %q: only http:// on the loopback interface is allowed", raw)
	}
	return u, nil
}

func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

var httpClient = &http.Client{
	Timeout: httpTimeout,
	Transport: &http.Transport{
		Proxy:               nil, // never through a proxy: loopback only
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	},
}

func waitHealthy(raw string, limit time.Duration) error {
	if _, err := loopback(raw); err != nil {
		return err
	}
	deadline := time.Now().Add(limit)
	for {
		resp, err := httpClient.Get(raw)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %v (last: %v)", raw, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a JSON request and decodes the JSON answer, failing unless
// the status is want. It returns the response (body closed).
func call(ctx context.Context, method, u string, hdr http.Header, body, out any, want int) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s = %d %s, want %d", method, u, resp.StatusCode, bytes.TrimSpace(raw), want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode %.200q: %w", method, u, raw, err)
		}
	}
	return resp, nil
}

// figures collects "key<TAB>value" lines, written to -out (or stdout).
type figures struct {
	lines []string
}

func (f *figures) add(key string, v float64) {
	f.lines = append(f.lines, fmt.Sprintf("%s\t%.6g", key, v))
}

func (f *figures) write(path string) error {
	out := strings.Join(f.lines, "\n") + "\n"
	if path == "" {
		_, err := os.Stdout.WriteString(out)
		return err
	}
	fmt.Fprint(os.Stderr, out)
	return os.WriteFile(path, []byte(out), 0o644)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chatload: "+format+"\n", args...)
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile[T int32 | float64](sorted []T, p float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// memory returns VmRSS of pid in KiB.
func memory(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(v)
			if len(fields) == 2 && fields[1] == "kB" {
				return strconv.ParseFloat(fields[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// settledMemory waits at least settle, then until VmRSS changes by less
// than 1% over a second (at most 10 more seconds), and returns it.
func settledMemory(pid int, settle time.Duration) (float64, error) {
	time.Sleep(settle)
	prev, err := memory(pid)
	if err != nil {
		return 0, err
	}
	for range 10 {
		time.Sleep(time.Second)
		cur, err := memory(pid)
		if err != nil {
			return 0, err
		}
		if math.Abs(cur-prev) < prev/100 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// --- Hearth: accounts and sessions ------------------------------------------

// session is a signed-in device: its cookie and CSRF token.
type session struct {
	Cookie string `json:"cookie"`
	CSRF   string `json:"csrf"`
	User   string `json:"user"`
}

func (s session) header(base string) http.Header {
	return http.Header{"Cookie": {"hearth_session=" + s.Cookie}, "X-Hearth-CSRF": {s.CSRF}, "Origin": {base}}
}

// household is what hearth-prepare leaves for the other commands.
type household struct {
	URL      string    `json:"url"`
	Channel  string    `json:"channel"` // #general
	Poster   session   `json:"poster"`  // the admin, who sends the timed messages
	Sessions []session `json:"sessions"`
}

type signIn struct {
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	CSRF string `json:"csrf"`
}

func sessionFrom(resp *http.Response, si signIn) (session, error) {
	for _, c := range resp.Cookies() {
		if c.Name == "hearth_session" && c.Value != "" {
			return session{Cookie: c.Value, CSRF: si.CSRF, User: si.User.ID}, nil
		}
	}
	return session{}, errors.New("sign-in answered without a hearth_session cookie")
}

// hearthPrepare sets a fresh Hearth up, adds accounts and signs each in
// many times (real argon2id sign-ins, each a device with its own session).
func hearthPrepare(args []string) error {
	fs := flag.NewFlagSet("hearth-prepare", flag.ContinueOnError)
	base := fs.String("url", "", "Hearth's base URL (loopback)")
	token := fs.String("setup-token", "", "the setup token (hearth admin setup-token)")
	accounts := fs.Int("accounts", 10, "member accounts the sessions are spread over")
	sessions := fs.Int("sessions", 1000, "sign-ins (one realtime client each)")
	parallel := fs.Int("parallel", 4, "sign-ins at once")
	out := fs.String("out", "", "file for the sessions (JSON)")
	figOut := fs.String("figures", "", "file for the figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := loopback(*base); err != nil {
		return err
	}
	if *token == "" || *out == "" || *sessions < 1 || *sessions > 100000 || *accounts < 1 || *accounts > 1000 {
		return errors.New("hearth-prepare needs -setup-token, -out, 1 <= -sessions <= 100000, 1 <= -accounts <= 1000")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := waitHealthy(*base+"/healthz", 20*time.Second); err != nil {
		return err
	}
	anon := http.Header{"X-Hearth-CSRF": {"1"}, "Origin": {*base}}
	var si signIn
	resp, err := call(ctx, "POST", *base+"/api/v1/setup", anon,
		map[string]string{"token": *token, "name": "bench", "password": password}, &si, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	h := household{URL: *base}
	if h.Poster, err = sessionFrom(resp, si); err != nil {
		return err
	}
	names := make([]string, *accounts)
	for i := range names {
		names[i] = fmt.Sprintf("load%03d", i+1)
		if _, err := call(ctx, "POST", *base+"/api/v1/admin/users", h.Poster.header(*base),
			map[string]string{"name": names[i], "password": password, "role": "member"}, nil, http.StatusCreated); err != nil {
			return fmt.Errorf("add account: %w", err)
		}
	}
	var chs struct {
		Channels []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"channels"`
	}
	if _, err := call(ctx, "GET", *base+"/api/v1/channels", h.Poster.header(*base), nil, &chs, http.StatusOK); err != nil {
		return err
	}
	for _, c := range chs.Channels {
		if c.Name == "general" {
			h.Channel = c.ID
		}
	}
	if h.Channel == "" {
		return errors.New("no #general channel")
	}

	logf("signing in %d times over %d accounts (%d at once)", *sessions, *accounts, *parallel)
	h.Sessions = make([]session, *sessions)
	took := make([]float64, *sessions)
	var next atomic.Int64
	errs := make(chan error, *parallel)
	start := time.Now()
	var wg sync.WaitGroup
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *sessions || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				var si signIn
				resp, err := call(ctx, "POST", *base+"/api/v1/auth/login", anon,
					map[string]string{"name": names[i%len(names)], "password": password}, &si, http.StatusOK)
				if err == nil {
					h.Sessions[i], err = sessionFrom(resp, si)
				}
				if err != nil {
					errs <- fmt.Errorf("sign-in %d: %w", i, err)
					cancel()
					return
				}
				took[i] = float64(time.Since(t0).Microseconds()) / 1000
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	elapsed := time.Since(start)
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, b, 0o600); err != nil {
		return err
	}
	slices.Sort(took)
	var f figures
	f.add("signin_n", float64(*sessions))
	f.add("signin_seconds", elapsed.Seconds())
	f.add("signin_p50_ms", percentile(took, 0.5))
	f.add("signin_p99_ms", percentile(took, 0.99))
	return f.write(*figOut)
}

func readHousehold(path string) (household, error) {
	var h household
	b, err := os.ReadFile(path)
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := loopback(h.URL); err != nil {
		return h, err
	}
	if len(h.Sessions) == 0 || h.Channel == "" {
		return h, fmt.Errorf("%s: no sessions or channel", path)
	}
	return h, nil
}

// --- Hearth: persisted messages per second ----------------------------------

func lastSeq(ctx context.Context, h household) (uint64, error) {
	var chs struct {
		Channels []struct {
			ID      string `json:"id"`
			LastSeq uint64 `json:"last_seq"`
		} `json:"channels"`
	}
	if _, err := call(ctx, "GET", h.URL+"/api/v1/channels", h.Poster.header(h.URL), nil, &chs, http.StatusOK); err != nil {
		return 0, err
	}
	for _, c := range chs.Channels {
		if c.ID == h.Channel {
			return c.LastSeq, nil
		}
	}
	return 0, errors.New("#general is gone")
}

// hearthPost posts from -senders clients at once, each waiting for its
// acknowledgement (201: committed) before the next post, for -duration.
func hearthPost(args []string) error {
	fs := flag.NewFlagSet("hearth-post", flag.ContinueOnError)
	path := fs.String("sessions", "", "file from hearth-prepare")
	senders := fs.Int("senders", 50, "concurrent senders, one session each")
	duration := fs.Duration("duration", 10*time.Second, "how long to post")
	maxPosts := fs.Int("max", 1_000_000, "stop after this many posts in all")
	prefix := fs.String("prefix", "hearth_post", "prefix of the figures' keys")
	out := fs.String("out", "", "file for the figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h, err := readHousehold(*path)
	if err != nil {
		return err
	}
	if *senders < 1 || *senders > len(h.Sessions) || *duration <= 0 || *duration > 5*time.Minute {
		return fmt.Errorf("need 1 <= -senders <= %d sessions and 0 < -duration <= 5m", len(h.Sessions))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration+time.Minute)
	defer cancel()
	before, err := lastSeq(ctx, h)
	if err != nil {
		return err
	}
	logf("posting from %d senders for %v", *senders, *duration)
	var posted atomic.Int64
	lat := make([][]float64, *senders)
	errs := make(chan error, *senders)
	start := time.Now()
	deadline := start.Add(*duration)
	var wg sync.WaitGroup
	for w := range *senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := h.Sessions[w]
			hdr := s.header(h.URL)
			u := h.URL + "/api/v1/channels/" + h.Channel + "/messages"
			for i := 0; time.Now().Before(deadline) && posted.Add(1) <= int64(*maxPosts); i++ {
				body := map[string]string{"text": fmt.Sprintf("post %d from sender %d: %s", i, w, filler), "key": fmt.Sprintf("s%d-%d", w, i)}
				t0 := time.Now()
				if _, err := call(ctx, "POST", u, hdr, body, nil, http.StatusCreated); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], float64(time.Since(t0).Microseconds())/1000)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	after, err := lastSeq(ctx, h)
	if err != nil {
		return err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if uint64(len(all)) != after-before {
		return fmt.Errorf("%d posts acknowledged but #general grew by %d messages", len(all), after-before)
	}
	var f figures
	f.add(*prefix+"_senders", float64(*senders))
	f.add(*prefix+"_acked", float64(len(all)))
	f.add(*prefix+"_stored", float64(after-before))
	f.add(*prefix+"_seconds", elapsed.Seconds())
	f.add(*prefix+"_per_s", float64(len(all))/elapsed.Seconds())
	f.add(*prefix+"_ack_p50_ms", percentile(all, 0.5))
	f.add(*prefix+"_ack_p99_ms", percentile(all, 0.99))
	return f.write(*out)
}

// --- Fan-out: delivery latency, loss, memory per connection -----------------

// target is a server under test: it connects receiving clients to one
// channel and publishes into it.
type target interface {
	// dial connects client i, subscribed and ready to receive.
	dial(ctx context.Context, i int) (*websocket.Conn, error)
	// publish sends text into the channel and returns once the server has
	// accepted it (Hearth: committed).
	publish(ctx context.Context, text, key string) error
	// pong answers an application-level ping in frame, if it is one.
	pong(ctx context.Context, ws *websocket.Conn, frame []byte) error
	// metrics returns extra figures about the server (may be empty).
	metrics(ctx context.Context) map[string]float64
}

type hearthTarget struct {
	h household
}

func (t *hearthTarget) dial(ctx context.Context, i int) (*websocket.Conn, error) {
	s := t.h.Sessions[i%len(t.h.Sessions)]
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(t.h.URL, "http")+"/api/v1/ws", &websocket.DialOptions{
		HTTPClient: httpClient,
		HTTPHeader: http.Header{"Origin": {t.h.URL}, "Cookie": {"hearth_session=" + s.Cookie}},
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxFrameBytes)
	// The hub registers the client before it sends hello: every event
	// after hello reaches it.
	_, b, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("read hello: %w", err)
	}
	if !bytes.Contains(b, []byte(`"type":"hello"`)) {
		ws.CloseNow()
		return nil, fmt.Errorf("first message is not hello: %.200q", b)
	}
	return ws, nil
}

func (t *hearthTarget) publish(ctx context.Context, text, key string) error {
	_, err := call(ctx, "POST", t.h.URL+"/api/v1/channels/"+t.h.Channel+"/messages", t.h.Poster.header(t.h.URL),
		map[string]string{"text": text, "key": key}, nil, http.StatusCreated)
	return err
}

func (t *hearthTarget) pong(context.Context, *websocket.Conn, []byte) error { return nil }

func (t *hearthTarget) metrics(ctx context.Context) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, "GET", t.h.URL+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		switch name {
		case "hearth_heap_bytes", "hearth_goroutines", "hearth_realtime_connections":
			if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
				out[name] = v
			}
		}
	}
	return out
}

// centrifugoTarget speaks Centrifugo's JSON client protocol (v2) over
// WebSocket and publishes through its HTTP API.
type centrifugoTarget struct {
	base    string
	apiKey  string
	secret  string
	channel string
}

// centrifugoSettings are the keys of the generated Centrifugo config file
// that chatload reads back.
type centrifugoSettings struct {
	Secret string `json:"token_hmac_secret_key"`
	APIKey string `json:"api_key"`
}

func (t *centrifugoTarget) token(user string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": user, "exp": time.Now().Add(time.Hour).Unix()})
	msg := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(t.secret))
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// reply waits for the reply with id, answering pings meanwhile.
func (t *centrifugoTarget) reply(ctx context.Context, ws *websocket.Conn, id int) (json.RawMessage, error) {
	for range 100 {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var r struct {
				ID    int             `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &r) != nil || r.ID != id {
				if err := t.pong(ctx, ws, line); err != nil {
					return nil, err
				}
				continue
			}
			if len(r.Error) > 0 {
				return nil, fmt.Errorf("command %d refused: %s", id, r.Error)
			}
			return line, nil
		}
	}
	return nil, fmt.Errorf("no reply to command %d", id)
}

func (t *centrifugoTarget) dial(ctx context.Context, i int) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(t.base, "http")+"/connection/websocket", &websocket.DialOptions{
		HTTPClient: httpClient,
		HTTPHeader: http.Header{"Origin": {t.base}},
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxFrameBytes)
	fail := func(err error) (*websocket.Conn, error) { ws.CloseNow(); return nil, err }
	connect, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": t.token(fmt.Sprintf("load%03d", i%10+1)), "name": "chatload"}})
	if err := ws.Write(ctx, websocket.MessageText, connect); err != nil {
		return fail(err)
	}
	if _, err := t.reply(ctx, ws, 1); err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]string{"channel": t.channel}})
	if err := ws.Write(ctx, websocket.MessageText, sub); err != nil {
		return fail(err)
	}
	if _, err := t.reply(ctx, ws, 2); err != nil {
		return fail(fmt.Errorf("subscribe: %w", err))
	}
	return ws, nil
}

func (t *centrifugoTarget) publish(ctx context.Context, text, _ string) error {
	var res struct {
		Error json.RawMessage `json:"error"`
	}
	_, err := call(ctx, "POST", t.base+"/api/publish", http.Header{"X-API-Key": {t.apiKey}},
		map[string]any{"channel": t.channel, "data": map[string]string{"text": text}}, &res, http.StatusOK)
	if err == nil && len(res.Error) > 0 {
		err = fmt.Errorf("publish refused: %s", res.Error)
	}
	return err
}

// pong answers Centrifugo's ping (an empty command, {}) with {}.
func (t *centrifugoTarget) pong(ctx context.Context, ws *websocket.Conn, frame []byte) error {
	for line := range bytes.SplitSeq(frame, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == "{}" {
			return ws.Write(ctx, websocket.MessageText, []byte("{}"))
		}
	}
	return nil
}

func (t *centrifugoTarget) metrics(context.Context) map[string]float64 { return nil }

// receiver is one connected client and what it got.
type receiver struct {
	ws      *websocket.Conn
	counts  []uint8 // per message sequence number
	lat     []int32 // µs from send to receipt
	dropped error   // set when the server closed the connection early
	done    chan struct{}
}

// clock is a monotonic clock shared by the sender and the receivers.
type clock struct{ start time.Time }

func (c clock) now() int64 { return int64(time.Since(c.start)) }

// receive reads frames until ctx ends, recording every timed message.
func (r *receiver) receive(ctx context.Context, t target, clk clock, total *atomic.Int64) {
	defer close(r.done)
	buf := make([]byte, 0, 4096)
	for {
		_, rd, err := r.ws.Reader(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.dropped = err
			}
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, len(buf))
			}
			n, err := rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					r.dropped = err
				}
				return
			}
		}
		now := clk.now()
		frame := buf
		for {
			i := bytes.Index(frame, []byte(marker))
			if i < 0 {
				break
			}
			frame = frame[i+len(marker):]
			seq, rest, ok := number(frame)
			if !ok {
				continue
			}
			sent, _, ok := number(rest)
			if !ok || seq >= uint64(len(r.counts)) {
				continue
			}
			if r.counts[seq] < math.MaxUint8 {
				r.counts[seq]++
			}
			r.lat = append(r.lat, int32(min((now-int64(sent))/1000, math.MaxInt32)))
			total.Add(1)
		}
		if err := t.pong(ctx, r.ws, buf); err != nil && ctx.Err() == nil {
			r.dropped = err
			return
		}
	}
}

// number parses a decimal number followed by a space.
func number(b []byte) (uint64, []byte, bool) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 || i > 20 {
		return 0, nil, false
	}
	n, err := strconv.ParseUint(string(b[:i]), 10, 64)
	return n, b[i+1:], err == nil
}

func fanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	kind := fs.String("target", "hearth", "hearth or centrifugo")
	base := fs.String("url", "", "the server's base URL (loopback)")
	path := fs.String("sessions", "", "hearth: file from hearth-prepare")
	cfgPath := fs.String("config", "", "centrifugo: its config file (from centrifugo-config)")
	pid := fs.Int("pid", 0, "the server's process ID, for its memory")
	clients := fs.Int("clients", 1000, "connected WebSocket clients")
	rate := fs.Int("rate", 100, "messages per second")
	duration := fs.Duration("duration", 20*time.Second, "how long to send")
	settle := fs.Duration("settle", 3*time.Second, "wait before reading memory")
	parallel := fs.Int("parallel", 50, "connections opened at once")
	prefix := fs.String("prefix", "", "prefix of the figures' keys (default: the target)")
	out := fs.String("out", "", "file for the figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clients < 1 || *clients > 20000 || *rate < 1 || *rate > 10000 || *duration <= 0 || *duration > 5*time.Minute || *pid <= 0 {
		return errors.New("fanout needs -pid, 1 <= -clients <= 20000, 1 <= -rate <= 10000, 0 < -duration <= 5m")
	}
	if *prefix == "" {
		*prefix = *kind
	}
	var t target
	switch *kind {
	case "hearth":
		h, err := readHousehold(*path)
		if err != nil {
			return err
		}
		t = &hearthTarget{h: h}
		*base = h.URL
	case "centrifugo":
		if _, err := loopback(*base); err != nil {
			return err
		}
		b, err := os.ReadFile(*cfgPath)
		if err != nil {
			return err
		}
		var s centrifugoSettings
		if err := json.Unmarshal(b, &s); err != nil || s.Secret == "" || s.APIKey == "" {
			return fmt.Errorf("%s: no token_hmac_secret_key or api_key (%v)", *cfgPath, err)
		}
		t = &centrifugoTarget{base: *base, apiKey: s.APIKey, secret: s.Secret, channel: "chat"}
	default:
		return fmt.Errorf("unknown -target %q", *kind)
	}
	messages := int(float64(*rate) * duration.Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), *duration+3*time.Minute)
	defer cancel()
	var f figures
	k := func(s string) string { return *prefix + "_" + s }

	// Memory with no client, then with every client connected and idle.
	rss0, err := settledMemory(*pid, *settle)
	if err != nil {
		return err
	}
	m0 := t.metrics(ctx)
	logf("%s: connecting %d clients (%d at once)", *kind, *clients, *parallel)
	rs := make([]*receiver, *clients)
	var next atomic.Int64
	errs := make(chan error, *parallel)
	start := time.Now()
	var wg sync.WaitGroup
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *clients || ctx.Err() != nil {
					return
				}
				dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
				ws, err := t.dial(dctx, i)
				dcancel()
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				rs[i] = &receiver{ws: ws, counts: make([]uint8, messages), done: make(chan struct{})}
			}
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, r := range rs {
			if r != nil {
				r.ws.CloseNow()
			}
		}
	}()
	if err := <-errs; err != nil {
		return err
	}
	connectTime := time.Since(start)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	var received atomic.Int64
	clk := clock{start: time.Now()}
	for _, r := range rs {
		go r.receive(recvCtx, t, clk, &received)
	}
	rss1, err := settledMemory(*pid, *settle)
	if err != nil {
		return err
	}
	m1 := t.metrics(ctx)
	f.add(k("clients"), float64(*clients))
	f.add(k("connect_seconds"), connectTime.Seconds())
	f.add(k("rss0_kib"), rss0)
	f.add(k("rss1_kib"), rss1)
	f.add(k("rss_per_client_kib"), (rss1-rss0)/float64(*clients))
	if v, ok := m1["hearth_realtime_connections"]; ok && int(v) != *clients {
		return fmt.Errorf("hearth_realtime_connections = %v, want %d", v, *clients)
	}
	if h0, h1 := m0["hearth_heap_bytes"], m1["hearth_heap_bytes"]; h1 > 0 {
		f.add(k("heap_per_client_kib"), (h1-h0)/1024/float64(*clients))
		f.add(k("goroutines_per_client"), (m1["hearth_goroutines"]-m0["hearth_goroutines"])/float64(*clients))
	}

	// Send at a fixed rate (open loop: a slow acknowledgement does not
	// delay the next send).
	logf("%s: sending %d messages at %d/s to %d clients", *kind, messages, *rate, *clients)
	acked := make([]bool, messages)
	ackLat := make([]float64, messages)
	var sendErrs atomic.Int64
	var firstErr atomic.Value
	var inflight sync.WaitGroup
	sem := make(chan struct{}, 1000)
	sendStart := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	for seq := range messages {
		<-tick.C
		select {
		case sem <- struct{}{}:
		default:
			tick.Stop()
			return fmt.Errorf("%s: 1000 sends in flight; the server does not keep up", *kind)
		}
		inflight.Add(1)
		go func() {
			defer func() { <-sem; inflight.Done() }()
			sent := clk.now()
			text := fmt.Sprintf("chatload %d %d %s", seq, sent, filler)
			if err := t.publish(ctx, text, runID+"-"+strconv.Itoa(seq)); err != nil {
				sendErrs.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			acked[seq] = true
			ackLat[seq] = float64(clk.now()-sent) / 1e6
		}()
	}
	tick.Stop()
	inflight.Wait()
	sendTime := time.Since(sendStart)
	var acks []float64
	for seq, a := range acked {
		if a {
			acks = append(acks, ackLat[seq])
		}
	}
	nAcked := len(acks)
	slices.Sort(acks)
	// Wait for the last deliveries (bounded), then stop the receivers.
	want := int64(nAcked) * int64(*clients)
	drain := time.Now().Add(10 * time.Second)
	for received.Load() < want && time.Now().Before(drain) {
		time.Sleep(20 * time.Millisecond)
	}
	stopRecv()
	for _, r := range rs {
		<-r.done
	}

	var lost, dups, extra, dropped, worst int
	var lat []int32
	for _, r := range rs {
		if r.dropped != nil {
			dropped++
		}
		l := 0
		for seq, n := range r.counts {
			switch {
			case acked[seq] && n == 0:
				l++
			case n > 1:
				dups += int(n) - 1
			case !acked[seq] && n > 0:
				extra++
			}
		}
		lost += l
		worst = max(worst, l)
		lat = append(lat, r.lat...)
	}
	slices.Sort(lat)
	ms := func(us int32) float64 { return float64(us) / 1000 }
	f.add(k("rate"), float64(*rate))
	f.add(k("messages"), float64(messages))
	f.add(k("acked"), float64(nAcked))
	f.add(k("send_errors"), float64(sendErrs.Load()))
	f.add(k("send_seconds"), sendTime.Seconds())
	f.add(k("ack_p50_ms"), percentile(acks, 0.50))
	f.add(k("ack_p99_ms"), percentile(acks, 0.99))
	f.add(k("deliveries"), float64(len(lat)))
	f.add(k("p50_ms"), ms(percentile(lat, 0.50)))
	f.add(k("p90_ms"), ms(percentile(lat, 0.90)))
	f.add(k("p99_ms"), ms(percentile(lat, 0.99)))
	f.add(k("p999_ms"), ms(percentile(lat, 0.999)))
	f.add(k("max_ms"), ms(percentile(lat, 1)))
	f.add(k("lost"), float64(lost))
	f.add(k("lost_worst_client"), float64(worst))
	f.add(k("duplicates"), float64(dups))
	f.add(k("unacked_received"), float64(extra))
	f.add(k("dropped_clients"), float64(dropped))
	if err := f.write(*out); err != nil {
		return err
	}
	if err, _ := firstErr.Load().(error); err != nil {
		logf("%s: %d sends failed, first: %v", *kind, sendErrs.Load(), err)
	}
	for _, r := range rs {
		r.ws.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

// --- Centrifugo configuration -----------------------------------------------

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// centrifugoConfig writes a Centrifugo v5 configuration for one channel
// namespace-less channel that clients may subscribe to, on 127.0.0.1 only,
// with usage statistics off (it would otherwise report to its vendor).
func centrifugoConfig(args []string) error {
	fs := flag.NewFlagSet("centrifugo-config", flag.ContinueOnError)
	port := fs.Int("port", 0, "port on 127.0.0.1")
	out := fs.String("out", "", "config file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port <= 0 || *port > 65535 || *out == "" {
		return errors.New("centrifugo-config needs -port and -out")
	}
	cfg := map[string]any{
		"address":                    "127.0.0.1",
		"port":                       strconv.Itoa(*port),
		"token_hmac_secret_key":      randomHex(32),
		"api_key":                    randomHex(32),
		"allowed_origins":            []string{fmt.Sprintf("http://127.0.0.1:%d", *port)},
		"allow_subscribe_for_client": true,
		"health":                     true,
		"usage_stats_disable":        true,
		"log_level":                  "error",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o600)
}
