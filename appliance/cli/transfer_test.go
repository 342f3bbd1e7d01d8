package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/cli"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/daemon"
)

// appliance starts a Hearth (plain HTTP, TURN on 127.0.0.1:0) with the
// members mum and kid and returns its URL.
func appliance(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load(config.Options{File: filepath.Join(dir, "none.toml"),
		Flags: map[string]string{"data": dir, "tls": "off", "mdns": "false", "tailnet": "false", "listen": "127.0.0.1:0", "turn-listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Listener: l, Version: "test", Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1},
		RelayIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	url := "http://" + l.Addr().String()
	ops, closeOps, err := admin.Connect(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ops.SetupToken(context.Background())
	closeOps()
	if err != nil {
		t.Fatal(err)
	}
	var si struct{ CSRF string }
	mum := &http.Client{Jar: newJar(), Timeout: 10 * time.Second}
	post(t, mum, url+"/api/v1/setup", "1", map[string]string{"token": tok, "name": "mum", "password": "correct horse"}, &si)
	var inv struct{ Token string }
	post(t, mum, url+"/api/v1/admin/invites", si.CSRF, map[string]any{"uses": 1, "ttl_seconds": 600}, &inv)
	post(t, &http.Client{Jar: newJar()}, url+"/api/v1/invites/"+inv.Token+"/accept", "1", map[string]string{"name": "kid", "password": "long enough"}, nil)
	return url
}

func post(t *testing.T, c *http.Client, url, csrf string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hearth-CSRF", csrf)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s = %d %s", url, resp.StatusCode, raw)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
}

// buffer is a concurrency-safe output capture.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits until the output contains s.
func (b *buffer) waitFor(t *testing.T, s string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within %s:\n%s", s, d, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b.String()
}

// user is one person's command line: their own config directory.
type user struct {
	t      *testing.T
	config string
	env    map[string]string
}

func newUser(t *testing.T) *user {
	return &user{t: t, config: t.TempDir(), env: map[string]string{}}
}

type result struct {
	stdout, stderr *buffer
}

// run runs a hearth command; done yields its exit status.
func (u *user) run(stdin string, args ...string) (res *result, done <-chan int) {
	res = &result{stdout: &buffer{}, stderr: &buffer{}}
	ch := make(chan int, 1)
	env := &cli.Env{Stdin: strings.NewReader(stdin), Stdout: res.stdout, Stderr: res.stderr, Version: "test",
		Getenv: func(k string) string {
			if k == "XDG_CONFIG_HOME" {
				return u.config
			}
			return u.env[k]
		}}
	go func() { ch <- cli.Main(args, env) }()
	return res, ch
}

func (u *user) mustRun(stdin string, args ...string) *result {
	u.t.Helper()
	res, done := u.run(stdin, args...)
	select {
	case code := <-done:
		if code != 0 {
			u.t.Fatalf("hearth %s = exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, res.stdout, res.stderr)
		}
	case <-time.After(60 * time.Second):
		u.t.Fatalf("hearth %s did not finish", strings.Join(args, " "))
	}
	return res
}

func login(t *testing.T, url, name, password string) *user {
	t.Helper()
	u := newUser(t)
	res := u.mustRun(password+"\n", "login", url, "--name", name, "--password-stdin")
	if !strings.Contains(res.stdout.String(), "Logged in to "+url+" as "+name) {
		t.Fatalf("login said %q", res.stdout)
	}
	st, err := os.Stat(filepath.Join(u.config, "hearth", "cli.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cli.json: %v, mode %v; want 0600", err, st.Mode())
	}
	return u
}

func randomFile(t *testing.T, path string, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkReceived compares the received tree with what was sent, by SHA-256.
func checkReceived(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			b, _ := os.ReadFile(p)
			got[filepath.ToSlash(rel)] = sha256.Sum256(b)
		}
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("received %d files, want %d: %v", len(got), len(want), got)
	}
	for name, b := range want {
		if h, ok := got[name]; !ok || h != sha256.Sum256(b) {
			t.Errorf("%s: missing or its SHA-256 differs from the sent file's", name)
		}
	}
}

var verification = regexp.MustCompile(`Verification: (\d{3} \d{3})`)

// transfer runs `hearth receive` (waiting) and `hearth send` between two
// members and checks both succeed with the same verification string.
func transferBetween(t *testing.T, sender, receiver *user, sendArgs []string) (send, recv *result) {
	t.Helper()
	out := t.TempDir()
	recv, recvDone := receiver.run("", "receive", "--dir", out, "--yes")
	recv.stderr.waitFor(t, "Waiting for files", 10*time.Second)
	send, sendDone := sender.run("", append([]string{"send", "--to", "kid"}, sendArgs...)...)
	for _, c := range []struct {
		name string
		done <-chan int
		res  *result
	}{{"send", sendDone, send}, {"receive", recvDone, recv}} {
		select {
		case code := <-c.done:
			if code != 0 {
				t.Fatalf("hearth %s = exit %d\nstdout:\n%s\nstderr:\n%s", c.name, code, c.res.stdout, c.res.stderr)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("hearth %s did not finish:\n%s", c.name, c.res.stderr)
		}
	}
	t.Logf("sender:\n%s%s\nreceiver:\n%s%s", send.stdout, send.stderr, recv.stdout, recv.stderr)
	sv, rv := verification.FindStringSubmatch(send.stderr.String()), verification.FindStringSubmatch(recv.stderr.String())
	if sv == nil || rv == nil || sv[1] != rv[1] {
		t.Errorf("verification strings differ or are missing: sender %q, receiver %q", sv, rv)
	}
	if !strings.Contains(send.stdout.String(), "verified (SHA-256)") || !strings.Contains(recv.stdout.String(), "verified (SHA-256)") {
		t.Errorf("no verification report:\nsender: %s\nreceiver: %s", send.stdout, recv.stdout)
	}
	t.Setenv("HEARTH_TEST_OUT", out) // for the caller: where the files landed
	return send, recv
}

// TestCLIToCLIDirect sends a folder and a file between two members'
// command lines through a real appliance; the connection is cut in the
// middle of the big file and the transfer resumes from the last ack.
func TestCLIToCLIDirect(t *testing.T) {
	url := appliance(t)
	mum, kid := login(t, url, "mum", "correct horse"), login(t, url, "kid", "long enough")
	src := t.TempDir()
	want := map[string][]byte{
		"big.bin":              randomFile(t, filepath.Join(src, "big.bin"), 12<<20+321),
		"album/one.jpg":        randomFile(t, filepath.Join(src, "album", "one.jpg"), 300<<10),
		"album/nested/two.txt": randomFile(t, filepath.Join(src, "album", "nested", "two.txt"), 10),
	}
	mum.env["HEARTH_TEST_CUT_AFTER"] = fmt.Sprint(5 << 20)
	send, recv := transferBetween(t, mum, kid, []string{filepath.Join(src, "big.bin"), filepath.Join(src, "album")})
	checkReceived(t, os.Getenv("HEARTH_TEST_OUT"), want)
	if !strings.Contains(send.stderr.String(), "resuming") || !strings.Contains(recv.stderr.String(), "resuming") {
		t.Errorf("no resume after the cut:\nsender:\n%s\nreceiver:\n%s", send.stderr, recv.stderr)
	}
	if strings.Contains(send.stderr.String(), "path relay/") {
		t.Errorf("a direct transfer went through the relay:\n%s", send.stderr)
	}
}

// TestCLIToCLIRelayOnly sends with --relay-only: both sides must use the
// appliance's TURN relay.
func TestCLIToCLIRelayOnly(t *testing.T) {
	url := appliance(t)
	mum, kid := login(t, url, "mum", "correct horse"), login(t, url, "kid", "long enough")
	src := t.TempDir()
	want := map[string][]byte{"film.mkv": randomFile(t, filepath.Join(src, "film.mkv"), 6<<20)}
	mum.env["HEARTH_TEST_CUT_AFTER"] = fmt.Sprint(2 << 20)
	send, recv := transferBetween(t, mum, kid, []string{"--relay-only", filepath.Join(src, "film.mkv")})
	checkReceived(t, os.Getenv("HEARTH_TEST_OUT"), want)
	for side, out := range map[string]string{"sender": send.stderr.String(), "receiver": recv.stderr.String()} {
		if !strings.Contains(out, "path relay/udp -> relay/udp") {
			t.Errorf("%s's candidate pair is not relay to relay:\n%s", side, out)
		}
	}
	if !strings.Contains(send.stderr.String(), "resuming") {
		t.Errorf("no resume after the cut:\n%s", send.stderr)
	}
}

// TestCLIGuestByCode sends to a guest: the receiver pairs with the
// printed code and needs no login.
func TestCLIGuestByCode(t *testing.T) {
	url := appliance(t)
	mum := login(t, url, "mum", "correct horse")
	src := t.TempDir()
	content := randomFile(t, filepath.Join(src, "report.pdf"), 700<<10)
	want := map[string][]byte{"report.pdf": content}
	send, sendDone := mum.run("", "send", "--code", filepath.Join(src, "report.pdf"))
	out := send.stdout.waitFor(t, "Pairing code:", 10*time.Second)
	m := regexp.MustCompile(`Pairing code: ([0-9A-Z]{5}-[0-9A-Z]{5})`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "/t/") {
		t.Fatalf("no pairing code or link in:\n%s", out)
	}
	guest := newUser(t)
	dir := t.TempDir()
	recv, recvDone := guest.run("", "receive", m[1], "--url", url, "--dir", dir, "--yes")
	for name, c := range map[string]<-chan int{"send": sendDone, "receive": recvDone} {
		select {
		case code := <-c:
			if code != 0 {
				t.Fatalf("hearth %s = exit %d\nsender:\n%s%s\nguest:\n%s%s", name, code, send.stdout, send.stderr, recv.stdout, recv.stderr)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("hearth %s did not finish", name)
		}
	}
	t.Logf("sender:\n%s%s\nguest:\n%s%s", send.stdout, send.stderr, recv.stdout, recv.stderr)
	checkReceived(t, dir, want)
	if !strings.Contains(recv.stderr.String(), "path relay/") {
		t.Errorf("a guest transfer did not go through the relay:\n%s", recv.stderr)
	}
}

// TestCLIOfflineDelivery: the member has no device online; with --offline
// the files arrive as a direct message's attachments.
func TestCLIOfflineDelivery(t *testing.T) {
	url := appliance(t)
	mum, kid := login(t, url, "mum", "correct horse"), login(t, url, "kid", "long enough")
	src := t.TempDir()
	content := randomFile(t, filepath.Join(src, "letter.txt"), 5000)
	res, done := mum.run("", "send", "--to", "kid", filepath.Join(src, "letter.txt"))
	if code := <-done; code != 1 || !strings.Contains(res.stderr.String(), "--offline") {
		t.Fatalf("send to an offline member = exit %d, %q; want a hint at --offline", code, res.stderr)
	}
	res = mum.mustRun("", "send", "--to", "kid", "--offline", filepath.Join(src, "letter.txt"))
	if !strings.Contains(res.stdout.String(), "kid is offline: left 1 file(s)") {
		t.Fatalf("offline send said %q", res.stdout)
	}
	// kid finds it in the direct messages, with the same bytes.
	var creds struct{ Token string }
	raw, _ := os.ReadFile(filepath.Join(kid.config, "hearth", "cli.json"))
	json.Unmarshal(raw, &creds)
	get := func(path string, out any) []byte {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+creds.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			json.Unmarshal(b, out)
		}
		return b
	}
	var chans struct {
		Channels []struct{ ID, Kind string }
	}
	get("/api/v1/channels", &chans)
	var dm string
	for _, c := range chans.Channels {
		if c.Kind == "dm" {
			dm = c.ID
		}
	}
	if dm == "" {
		t.Fatalf("kid has no direct message channel: %+v", chans)
	}
	var msgs struct {
		Messages []struct {
			Text        string
			Attachments []struct{ ID, Name string }
		}
	}
	get("/api/v1/channels/"+dm+"/messages", &msgs)
	if len(msgs.Messages) != 1 || len(msgs.Messages[0].Attachments) != 1 || msgs.Messages[0].Attachments[0].Name != "letter.txt" {
		t.Fatalf("direct messages = %+v", msgs)
	}
	if got := get("/api/v1/attachments/"+msgs.Messages[0].Attachments[0].ID, nil); !bytes.Equal(got, content) {
		t.Errorf("the attachment holds %d bytes differing from the file", len(got))
	}
}
