package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

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
