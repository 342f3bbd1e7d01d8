// Command chatload is the load generator of Hearth's chat benchmarks
// (.ci/bench-chat, part of `make bench`). It drives a running `hearth serve`
// — or, as the reference, a Centrifugo server — from its own process, over
// HTTP and WebSockets on the loopback interface only, and writes its
// figures as "key<TAB>value" lines.
//
//	chatload freeport
//	chatload wait URL
//	chatload hearth-prepare -url URL -setup-token T -sessions 1000 -out FILE
//	chatload hearth-post -sessions FILE -senders 50 -duration 10s
//	chatload fanout -target hearth -sessions FILE -pid PID -clients 1000 -rate 100 -duration 20s
//	chatload centrifugo-config -port P -out FILE
//	chatload fanout -target centrifugo -url URL -config FILE -pid PID -clients 1000 -rate 100 -duration 20s
//
// hearth.go holds what is particular to Hearth (accounts, sign-ins, the
// throughput run), centrifugo.go the reference's protocol and config, and
// fanout.go the delivery measurement both share. Every loop is bounded in
// count and time, and every address must be on the loopback interface.
package main

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
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
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
