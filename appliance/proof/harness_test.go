package proof_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
)

// hearthBin is the binary built once for the tests that run the real thing.
var hearthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hearth-proof-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hearthBin = filepath.Join(dir, "hearth")
	out, err := exec.Command("go", "build", "-o", hearthBin, "github.com/hearth-home/hearth/cmd/hearth").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hearth: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// envInt reads a positive integer from the environment.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// lockedBuffer collects a child's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 {
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one run of `hearth serve`.
type proc struct {
	t      testing.TB
	data   string
	addr   string // host:port it serves on
	cmd    *exec.Cmd
	log    *lockedBuffer
	notify *net.UnixConn
	exited chan struct{}
}

// startProc runs the binary on data, serving on addr ("" for a port of
// its choosing, read from its READY notification), and waits until it is
// ready.
func startProc(t testing.TB, data, addr string, extra ...string) *proc {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	nsPath := filepath.Join(t.TempDir(), "notify")
	ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--data", data, "--listen", addr, "--tls", "off", "--mdns=false", "--tailnet=false",
		"--turn-listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(hearthBin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEARTH_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "LISTEN_") &&
			!strings.HasPrefix(kv, "WATCHDOG_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "NOTIFY_SOCKET="+nsPath)
	p := &proc{t: t, data: data, cmd: cmd, log: &lockedBuffer{}, notify: ns, exited: make(chan struct{})}
	cmd.Stderr = p.log
	cmd.Stdout = p.log
	if err := cmd.Start(); err != nil {
		ns.Close()
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill(); ns.Close() })
	ns.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := ns.Read(buf)
		if err != nil {
			p.kill()
			t.Fatalf("hearth did not get ready: %v; log:\n%s", err, p.log.String())
		}
		msg := string(buf[:n])
		if !strings.Contains(msg, "READY=1") {
			continue
		}
		for _, line := range strings.Split(msg, "\n") {
			if a, ok := strings.CutPrefix(line, "STATUS=serving on "); ok {
				p.addr = strings.SplitN(a, ";", 2)[0]
			}
		}
		break
	}
	if p.addr == "" {
		t.Fatalf("READY without an address; log:\n%s", p.log.String())
	}
	return p
}

func (p *proc) url() string { return "http://" + p.addr }

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop ends the process with SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Fatalf("hearth did not stop after SIGTERM; log:\n%s", p.log.String())
	}
	if st := p.cmd.ProcessState; st == nil || !st.Success() {
		p.t.Fatalf("hearth exited with %v after SIGTERM; log:\n%s", st, p.log.String())
	}
}

// setupToken asks the running daemon for the first-run token over the
// admin socket.
func setupToken(t testing.TB, data string) string {
	t.Helper()
	ops, closeOps, err := admin.Connect(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOps()
	tok, err := ops.SetupToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiClient talks to the API like a browser (cookies and the CSRF header)
// or, once it has one, like a script (a bearer token).
type apiClient struct {
	base   string
	http   *http.Client
	csrf   string
	bearer string
}

func newAPI(base string) *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{base: base, csrf: "1", http: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// statusOf returns the HTTP status of an apiError, 0 for other errors.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// send makes a request with a raw body and returns the response body.
func (c *apiClient) send(ctx context.Context, method, path, ctype string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	} else {
		req.Header.Set("X-Hearth-CSRF", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(raw, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	switch o := out.(type) {
	case nil:
	case *[]byte:
		*o = raw
	default:
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, "application/json", rd, out)
}

// must is do for steps that cannot fail.
func (c *apiClient) must(t testing.TB, method, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.do(ctx, method, path, body, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

type signInReply struct {
	User struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Role string `json:"role"`
	} `json:"user"`
	CSRF string `json:"csrf"`
}

// setupAdmin creates the first admin with the setup token and returns a
// signed-in browser client.
func setupAdmin(t testing.TB, base, data, name, password string) (*apiClient, signInReply) {
	t.Helper()
	c := newAPI(base)
	var si signInReply
	c.must(t, "POST", "/api/v1/setup", map[string]string{"token": setupToken(t, data), "name": name, "password": password}, &si)
	c.csrf = si.CSRF
	return c, si
}

// token makes a personal access token for c's user and returns a client
// that uses it.
func (c *apiClient) token(t testing.TB) *apiClient {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	c.must(t, "POST", "/api/v1/tokens", map[string]string{"name": "proof"}, &tok)
	b := newAPI(c.base)
	b.bearer = tok.Token
	return b
}

// invite makes a one-use invite and has a new member accept it.
func (c *apiClient) invite(t testing.TB, name, password string) (*apiClient, signInReply) {
	t.Helper()
	var inv struct {
		Token string `json:"token"`
	}
	c.must(t, "POST", "/api/v1/admin/invites", map[string]any{"uses": 1, "ttl_seconds": 3600}, &inv)
	m := newAPI(c.base)
	var si signInReply
	m.must(t, "POST", "/api/v1/invites/"+inv.Token+"/accept", map[string]string{"name": name, "password": password}, &si)
	m.csrf = si.CSRF
	return m, si
}

type channel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (c *apiClient) createChannel(t testing.TB, req map[string]any) channel {
	t.Helper()
	var out struct {
		Channel channel `json:"channel"`
	}
	c.must(t, "POST", "/api/v1/channels", req, &out)
	if out.Channel.ID == "" {
		t.Fatalf("create channel %v: no ID", req)
	}
	return out.Channel
}

type attachment struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type message struct {
	Channel     string       `json:"channel"`
	Seq         uint64       `json:"seq"`
	Author      string       `json:"author"`
	Text        string       `json:"text"`
	Key         string       `json:"key"`
	Attachments []attachment `json:"attachments"`
}

// history reads a channel's whole history, oldest first.
func (c *apiClient) history(ctx context.Context, channelID string) ([]message, error) {
	var all []message
	before := uint64(0)
	for {
		var page struct {
			Messages []message `json:"messages"`
			More     bool      `json:"more"`
		}
		if err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/channels/%s/messages?before=%d&limit=200", channelID, before), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Messages...)
		for _, m := range page.Messages {
			if before == 0 || m.Seq < before {
				before = m.Seq
			}
		}
		if !page.More || len(page.Messages) == 0 || before <= 1 {
			break
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	return all, nil
}

// freePort reserves nothing: it returns an address that was free a moment
// ago, for a process restarted on the same address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
