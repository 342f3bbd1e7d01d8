package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin is the hearth binary built once for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hearth-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "hearth")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hearth: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hearth runs a short command and returns its stdout, stderr and exit code.
func hearth(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run hearth %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEARTH_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") &&
			!strings.HasPrefix(kv, "LISTEN_") && !strings.HasPrefix(kv, "WATCHDOG_") && !strings.HasPrefix(kv, "INVOCATION_ID=") {
			env = append(env, kv)
		}
	}
	return env
}

type daemonProc struct {
	cmd    *exec.Cmd
	notify *net.UnixConn
	url    string
	stderr *bytes.Buffer
}

// serve starts `hearth serve` on data with a notify socket and extra
// environment, and waits for READY=1.
func serve(t *testing.T, data string, extraEnv []string, extraFiles []*os.File, args ...string) *daemonProc {
	t.Helper()
	nsPath := filepath.Join(t.TempDir(), "notify")
	ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	base := []string{"serve", "--data", data, "--tls", "off", "--mdns=false", "--turn-listen", "127.0.0.1:0"}
	cmd := exec.Command(bin, append(base, args...)...)
	if len(extraFiles) > 0 {
		// LISTEN_PID must be the daemon's own PID: let a shell set it and exec.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin}, append(base, args...)...)...)
		cmd.ExtraFiles = extraFiles
	}
	cmd.Env = append(cleanEnv(), append([]string{"NOTIFY_SOCKET=" + nsPath}, extraEnv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, notify: ns, stderr: &stderr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	msg := p.next(t)
	if !strings.Contains(msg, "READY=1") {
		t.Fatalf("first notification = %q, want READY=1; log:\n%s", msg, stderr.String())
	}
	for _, line := range strings.Split(msg, "\n") {
		if addr, ok := strings.CutPrefix(line, "STATUS=serving on "); ok {
			p.url = "http://" + strings.SplitN(addr, ";", 2)[0]
		}
	}
	return p
}

func (p *daemonProc) next(t *testing.T) string {
	t.Helper()
	p.notify.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 4096)
	n, err := p.notify.Read(buf)
	if err != nil {
		t.Fatalf("no notification from hearth: %v; log:\n%s", err, p.stderr.String())
	}
	return string(buf[:n])
}

func (p *daemonProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("hearth exited with %v after SIGTERM; log:\n%s", err, p.stderr.String())
	}
}

func TestSystemdNotifyOrder(t *testing.T) {
	data := t.TempDir()
	p := serve(t, data, []string{"WATCHDOG_USEC=300000"}, nil, "--listen", "127.0.0.1:0")
	if msg := p.next(t); msg != "WATCHDOG=1" {
		t.Fatalf("second notification = %q, want WATCHDOG=1", msg)
	}
	resp, err := http.Get(p.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after READY = %v %v", resp, err)
	}
	resp.Body.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	for {
		msg := p.next(t)
		if msg == "WATCHDOG=1" {
			continue
		}
		if !strings.HasPrefix(msg, "STOPPING=1") {
			t.Fatalf("notification after SIGTERM = %q, want STOPPING=1", msg)
		}
		break
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func TestSocketActivation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // the child holds its own copy
	defer f.Close()
	addr := l.Addr().String()
	p := serve(t, t.TempDir(), []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=https"}, []*os.File{f}, "--listen", "127.0.0.1:1")
	if p.url != "http://"+addr {
		t.Fatalf("daemon serves on %q, want the passed socket %s", p.url, addr)
	}
	resp, err := http.Get(p.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz on the activated socket = %v %v", resp, err)
	}
	resp.Body.Close()
	p.stop(t)
}

func TestAdminCLIRunningAndStopped(t *testing.T) {
	data := t.TempDir()
	p := serve(t, data, nil, nil, "--listen", "127.0.0.1:0")

	token, _, code := hearth(t, "", "admin", "setup-token", "--data", data)
	if code != 0 || len(strings.TrimSpace(token)) < 20 {
		t.Fatalf("setup-token = %q (exit %d)", token, code)
	}
	if _, stderr, code := hearth(t, "", "admin", "user", "add", "mum", "--data", data); code != 2 || !strings.Contains(stderr, "--password-stdin") {
		t.Fatalf("user add without a password = exit %d %q", code, stderr)
	}
	if out, stderr, code := hearth(t, "correct horse\n", "admin", "user", "add", "mum", "--admin", "--password-stdin", "--data", data); code != 0 {
		t.Fatalf("user add = %d %s %s", code, out, stderr)
	}
	hearth(t, "long enough\n", "admin", "user", "add", "kid", "--password-stdin", "--data", data)
	if _, stderr, code := hearth(t, "long enough\n", "admin", "user", "add", "kid", "--password-stdin", "--data", data); code != 1 || !strings.Contains(stderr, "already taken") {
		t.Fatalf("duplicate user add = exit %d %q", code, stderr)
	}
	out, _, _ := hearth(t, "", "admin", "user", "list", "--json", "--data", data)
	if !strings.Contains(out, `"name": "kid"`) || !strings.Contains(out, `"name": "mum"`) || strings.Contains(out, "pass_hash") {
		t.Fatalf("user list --json = %s", out)
	}
	if out, _, code := hearth(t, "", "admin", "user", "disable", "kid", "--data", data); code != 0 || !strings.Contains(out, "disabled") {
		t.Fatalf("user disable = %d %s", code, out)
	}
	if _, _, code := hearth(t, "new password\n", "admin", "user", "passwd", "kid", "--password-stdin", "--data", data); code != 0 {
		t.Fatalf("user passwd exit %d", code)
	}
	out, _, code = hearth(t, "", "admin", "invite", "--uses", "3", "--ttl", "2h", "--data", data)
	if code != 0 || !strings.Contains(out, "/join/") || !strings.Contains(out, "█") {
		t.Fatalf("admin invite = %d %s", code, out)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, stderr, code := hearth(t, "", "backup", backup, "--data", data); code != 0 || !strings.Contains(out, "backup written") {
		t.Fatalf("backup while running = %d %s %s", code, out, stderr)
	}
	if _, stderr, code := hearth(t, "", "restore", backup, "--data", data); code != 1 || !strings.Contains(stderr, "stop it first") {
		t.Fatalf("restore while running = %d %s", code, stderr)
	}
	p.stop(t)

	// Stopped: the same commands open the file directly.
	hearth(t, "", "admin", "user", "disable", "kid", "--enable", "--data", data)
	out, _, _ = hearth(t, "", "admin", "user", "list", "--data", data)
	if !strings.Contains(out, "kid") || strings.Contains(out, "disabled") {
		t.Fatalf("user list (stopped) after enable = %s", out)
	}
	hearth(t, "correct horse\n", "admin", "user", "add", "gran", "--password-stdin", "--data", data)
	if out, stderr, code := hearth(t, "", "restore", backup, "--data", data); code != 0 {
		t.Fatalf("restore (stopped) = %d %s %s", code, out, stderr)
	}
	out, _, _ = hearth(t, "", "admin", "user", "list", "--data", data)
	if strings.Contains(out, "gran") || !strings.Contains(out, "disabled") {
		t.Fatalf("after restore the list should be the backup's: %s", out)
	}
	if _, stderr, code := hearth(t, "", "admin", "setup-token", "--data", data); code != 1 || !strings.Contains(stderr, "already set up") {
		t.Fatalf("setup-token after setup = %d %s", code, stderr)
	}
}

func TestConfigPrintShowsSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hearth.toml")
	os.WriteFile(file, []byte("mdns = false\nname = \"den\"\n"), 0o600)
	out, stderr, code := hearth(t, "", "config", "print", "--config", file, "--listen", ":9443")
	if code != 0 {
		t.Fatalf("config print = %d %s", code, stderr)
	}
	want := []string{`mdns          = false`, "# file " + file, `listen        = ":9443"`, "# flag --listen", `turn_listen   = ":3478"`, "# default"}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("config print lacks %q:\n%s", w, out)
		}
	}
	os.WriteFile(file, []byte("mdns = \"sometimes\"\n"), 0o600)
	if _, stderr, code := hearth(t, "", "config", "print", "--config", file); code != 1 || !strings.Contains(stderr, "mdns") {
		t.Fatalf("bad config = %d %q", code, stderr)
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"admin", "--help"}, {"admin", "user", "add", "--help"},
		{"admin", "invite", "--help"}, {"backup", "--help"}, {"restore", "--help"}, {"config", "print", "--help"}, {"version", "--help"}} {
		out, _, code := hearth(t, "", args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("hearth %v = exit %d:\n%s", args, code, out)
		}
	}
	if _, stderr, code := hearth(t, "", "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown command = %d %q", code, stderr)
	}
	out, _, _ := hearth(t, "", "version")
	if !strings.HasPrefix(out, "hearth ") {
		t.Errorf("version = %q", out)
	}
}

func TestDoctor(t *testing.T) {
	data := t.TempDir()
	p := serve(t, data, nil, nil, "--listen", "127.0.0.1:0")
	out, stderr, code := hearth(t, "", "doctor", "--data", data, "--tls", "off")
	if code != 0 || !strings.Contains(out, "daemon       running") || !strings.Contains(out, "serving") || !strings.Contains(out, "fix: open") {
		t.Fatalf("doctor (running) = %d\n%s%s", code, out, stderr)
	}
	p.stop(t)
	// Stopped, with its port taken by someone else: a failure with a fix.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, _, code = hearth(t, "", "doctor", "--data", data, "--tls", "off", "--listen", l.Addr().String(), "--json")
	if code != 1 || !strings.Contains(out, `"status": "fail"`) || !strings.Contains(out, `"fix": "stop what uses it`) {
		t.Fatalf("doctor (port taken) = %d\n%s", code, out)
	}
}
