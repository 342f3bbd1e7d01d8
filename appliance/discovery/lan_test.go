package discovery

// The LAN tests run Hearth's announcer, Go browsers and avahi-daemon (a
// real, independent mDNS stack) in two private network namespaces joined by
// a veth pair, all created and removed by the test. Nothing leaves those
// namespaces. They need root (to create namespaces) and, from Debian,
// iproute2, avahi-daemon, avahi-utils and dbus-daemon.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lan is two namespaces, A and B, joined by a veth pair.
type lan struct {
	t        *testing.T
	dir      string
	nsA, nsB string
	ifA, ifB string
	addrA    netip.Addr
	addrB    netip.Addr
}

const (
	addrA = "10.213.0.1"
	addrB = "10.213.0.2"
)

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: the LAN tests create network namespaces and need root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the LAN tests need Debian's iproute2, avahi-daemon, avahi-utils and dbus-daemon (.ci/deps installs them)", tool)
		}
	}
}

// run runs a command, failing the test with its output on error.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newLAN creates the namespaces and the link, removed when the test ends.
func newLAN(t *testing.T) *lan {
	requireTools(t, "ip", "avahi-daemon", "avahi-browse", "avahi-resolve", "dbus-daemon")
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, rand.N(1000))
	l := &lan{t: t, dir: t.TempDir(), nsA: "hearthA" + id, nsB: "hearthB" + id, ifA: "hda" + id, ifB: "hdb" + id,
		addrA: netip.MustParseAddr(addrA), addrB: netip.MustParseAddr(addrB)}
	for _, ns := range []string{l.nsA, l.nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		// No duplicate address detection: IPv6 link-local addresses are
		// usable at once.
		run(t, "ip", "netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
	}
	run(t, "ip", "link", "add", l.ifA, "netns", l.nsA, "type", "veth", "peer", "name", l.ifB, "netns", l.nsB)
	for _, side := range []struct{ ns, ifname, addr string }{{l.nsA, l.ifA, addrA}, {l.nsB, l.ifB, addrB}} {
		run(t, "ip", "-n", side.ns, "addr", "add", side.addr+"/24", "dev", side.ifname)
		run(t, "ip", "-n", side.ns, "link", "set", side.ifname, "multicast", "on", "up")
	}
	return l
}

// proc is a process started in a namespace.
type proc struct {
	name   string
	helper bool // stops when its stdin closes
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	events <-chan event
	stderr *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs args in namespace ns; a failing test shows its stderr. The
// process is stopped (stdin closed, then SIGTERM, then SIGKILL) when the
// test ends, before the namespaces go.
func (l *lan) start(t *testing.T, name, ns string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.events = readEvents(stdout)
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.stderr)
		}
	})
	return p
}

// helper runs the test binary in helper mode in ns.
func (l *lan) helper(t *testing.T, name, ns, mode string, env ...string) *proc {
	t.Helper()
	p := l.start(t, name, ns, append(env, helperEnv+"="+mode), os.Args[0], "-test.run=^$")
	p.helper = true
	return p
}

// stop ends the process gently: stdin closed for helpers (they stop on
// EOF), then SIGTERM, then SIGKILL.
func (p *proc) stop(t *testing.T) {
	_ = p.stdin.Close()
	if p.helper {
		select {
		case <-p.done:
			return
		case <-time.After(3 * time.Second):
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// wait returns the first event that satisfies ok, failing the test after
// timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, open := <-p.events:
			if !open {
				t.Fatalf("%s exited before %s; stderr:\n%s", p.name, what, p.stderr)
			}
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("%s: no %s within %v; stderr:\n%s", p.name, what, timeout, p.stderr)
		}
	}
}

// result waits for a one-shot helper's result.
func (p *proc) result(t *testing.T, timeout time.Duration) event {
	t.Helper()
	return p.wait(t, timeout, "result", func(e event) bool { return e.Event == "result" })
}

// avahi is an avahi-daemon running in a namespace with its own D-Bus.
type avahi struct {
	env []string // DBUS_SYSTEM_BUS_ADDRESS for its clients
	ns  string
	l   *lan
}

// startAvahi starts a private dbus-daemon and an avahi-daemon in ns, on
// ifname only, publishing host name hostName (the namespaces share the
// UTS namespace, so each avahi gets its own name).
func (l *lan) startAvahi(t *testing.T, ns, ifname, hostName string) *avahi {
	t.Helper()
	dir := filepath.Join(l.dir, hostName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bus := filepath.Join(dir, "bus")
	busConf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`, bus)
	avahiConf := fmt.Sprintf(`[server]
host-name=%s
use-ipv4=yes
use-ipv6=yes
allow-interfaces=%s
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
`, hostName, ifname)
	for name, body := range map[string]string{"bus.conf": busConf, "avahi-daemon.conf": avahiConf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbus := l.start(t, "dbus-daemon "+hostName, ns, nil, "dbus-daemon", "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(bus); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbus-daemon did not create %s; stderr:\n%s", bus, dbus.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	env := []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + bus}
	// `ip netns exec` gives the command its own mount namespace: a tmpfs
	// on /run there keeps this avahi's pid file and socket apart from any
	// other avahi on the machine.
	d := l.start(t, "avahi-daemon "+hostName, ns, env, "sh", "-c",
		"mount -t tmpfs tmpfs /run && exec avahi-daemon --no-drop-root --no-chroot --no-proc-title --no-rlimits -f "+filepath.Join(dir, "avahi-daemon.conf"))
	for !strings.Contains(d.stderr.String(), "Server startup complete") {
		select {
		case <-d.done:
			t.Fatalf("avahi-daemon exited; stderr:\n%s", d.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("avahi-daemon did not start; stderr:\n%s", d.stderr)
		}
	}
	return &avahi{env: env, ns: ns, l: l}
}

// command runs an avahi client (avahi-browse, avahi-resolve) against this
// daemon, in its namespace, and returns its output and how long it took.
func (a *avahi) command(t *testing.T, timeout time.Duration, args ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", a.ns}, args...)...)
	cmd.Env = append(os.Environ(), a.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, &stderr)
	}
	return string(out), took
}

// announce starts an announcer helper in ns and waits until it holds a
// name; it returns the process, when Run started (Unix ns) and the
// announced status.
func (l *lan) announce(t *testing.T, name, ns string, env ...string) (*proc, int64, event) {
	t.Helper()
	p := l.helper(t, "announcer "+name+" in "+ns, ns, "announce", append(env, "HD_NAME="+name)...)
	run := p.wait(t, 5*time.Second, "start", func(e event) bool { return e.Event == "run" })
	st := p.wait(t, 10*time.Second, "announced state", func(e event) bool {
		return e.Status != nil && e.Status.State == StateAnnounced
	})
	return p, run.At, st
}

func sinceNs(from, to int64) time.Duration { return time.Duration(to - from) }

func TestLAN(t *testing.T) {
	l := newLAN(t)

	// avahi-daemon on both sides: in A it shares port 5353 with Hearth on
	// the same "box"; in B it is the independent stack that must find it.
	var avA, avB *avahi
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); avA = l.startAvahi(t, l.nsA, l.ifA, "avahi-a") }()
	go func() { defer wg.Done(); avB = l.startAvahi(t, l.nsB, l.ifB, "avahi-b") }()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	watch := l.helper(t, "watcher in B", l.nsB, "watch")
	watch.wait(t, 5*time.Second, "watcher start", func(e event) bool { return e.Event == "run" })

	// Hearth in A, next to avahi-a; polled every 300 ms for address
	// changes. A one-shot querier in B asks from the start, every 10 ms.
	first := l.helper(t, "first-answer querier in B", l.nsB, "resolve", "HD_HOST=hearth.local", "HD_RETRY=10ms", "HD_TIMEOUT=10s")
	hearth, runAt, st := l.announce(t, "hearth", l.nsA, "HD_POLL=300ms", "HD_PORT=8443", "HD_VERSION=1.2.3")
	if st.Status.Name != "hearth" || !slices.Contains(st.Status.Addrs, l.addrA) {
		t.Fatalf("announcer status = %+v, want hearth at %v", st.Status, l.addrA)
	}
	r := first.result(t, 10*time.Second)
	if r.Error != "" || !slices.Contains(r.Addrs, l.addrA) {
		t.Fatalf("first one-shot query: %+v", r)
	}
	t.Logf("Run to announced: %v; Run to first answer in B: %v", sinceNs(runAt, st.At).Round(time.Millisecond), sinceNs(runAt, r.At).Round(time.Millisecond))

	t.Run("go browser finds the service", func(t *testing.T) {
		r := l.helper(t, "browser in B", l.nsB, "browse", "HD_TIMEOUT=1500ms").result(t, 10*time.Second)
		if r.Error != "" {
			t.Fatalf("Browse: %s", r.Error)
		}
		i := slices.IndexFunc(r.Services, func(s Service) bool { return s.Instance == "hearth" })
		if i < 0 {
			t.Fatalf("Browse found %+v, want instance hearth", r.Services)
		}
		s := r.Services[i]
		if s.Host != "hearth.local" || s.Port != 8443 || !slices.Contains(s.Addrs, l.addrA) ||
			s.Text["v"] != "1.2.3" || s.Text["https"] != "8443" || s.Text["path"] != "/" {
			t.Fatalf("Browse = %+v, want hearth.local:8443 at %v with TXT v, https, path", s, l.addrA)
		}
		if s.URL() != "https://hearth.local:8443/" {
			t.Errorf("URL() = %q", s.URL())
		}
	})

	t.Run("go resolver resolves the host name", func(t *testing.T) {
		r := l.helper(t, "resolver in B", l.nsB, "resolve", "HD_HOST=hearth.local").result(t, 10*time.Second)
		if r.Error != "" || !slices.Contains(r.Addrs, l.addrA) {
			t.Fatalf("Resolve(hearth.local) = %v, %s; want %v", r.Addrs, r.Error, l.addrA)
		}
		t.Logf("Resolve(hearth.local) from B: %.1f ms", r.Elapsed)
	})

	t.Run("avahi browses and resolves the services", func(t *testing.T) {
		for _, svc := range []string{ServiceType, HTTPSServiceType} {
			out, took := avB.command(t, 15*time.Second, "avahi-browse", "-rptk", svc)
			var resolved []string
			for _, line := range strings.Split(out, "\n") {
				f := strings.Split(line, ";")
				if len(f) >= 10 && f[0] == "=" && f[2] == "IPv4" && f[3] == "hearth" {
					resolved = f
					break
				}
			}
			if resolved == nil {
				t.Fatalf("avahi-browse -rptk %s found no IPv4 hearth:\n%s", svc, out)
			}
			// =;iface;IPv4;name;type;domain;host;address;port;txt
			if resolved[4] != svc || resolved[6] != "hearth.local" || resolved[7] != addrA || resolved[8] != "8443" {
				t.Fatalf("avahi-browse resolved %q, want %s at hearth.local %s port 8443", resolved, svc, addrA)
			}
			if svc == ServiceType && (!strings.Contains(resolved[9], `"v=1.2.3"`) || !strings.Contains(resolved[9], `"https=8443"`) || !strings.Contains(resolved[9], `"path=/"`)) {
				t.Fatalf("avahi-browse TXT = %s, want v, https and path", resolved[9])
			}
			t.Logf("avahi-browse -rptk %s: %v", svc, took.Round(time.Millisecond))
		}
	})

	t.Run("avahi resolves the host name", func(t *testing.T) {
		out, took := avB.command(t, 10*time.Second, "avahi-resolve", "-4", "-n", "hearth.local")
		if got := strings.Fields(out); len(got) != 2 || got[0] != "hearth.local" || got[1] != addrA {
			t.Fatalf("avahi-resolve -4 -n hearth.local = %q, want hearth.local %s", out, addrA)
		}
		t.Logf("avahi-resolve -n hearth.local: %v", took.Round(time.Millisecond))
	})

	t.Run("same name in B becomes hearth-2", func(t *testing.T) {
		second, _, st := l.announce(t, "hearth", l.nsB)
		if st.Status.Name != "hearth-2" || st.Status.Conflicts != 1 || !slices.Contains(st.Status.Addrs, l.addrB) {
			t.Fatalf("second announcer status = %+v, want hearth-2 after one conflict", st.Status)
		}
		// Hearth in A keeps its name; avahi in A resolves the new one.
		out, _ := avA.command(t, 10*time.Second, "avahi-resolve", "-4", "-n", "hearth-2.local")
		if got := strings.Fields(out); len(got) != 2 || got[1] != addrB {
			t.Fatalf("avahi-resolve -n hearth-2.local from A = %q, want %s", out, addrB)
		}
		out, _ = avB.command(t, 10*time.Second, "avahi-resolve", "-4", "-n", "hearth.local")
		if got := strings.Fields(out); len(got) != 2 || got[1] != addrA {
			t.Fatalf("avahi-resolve -n hearth.local from B = %q, want still %s", out, addrA)
		}
		second.stop(t)
	})

	t.Run("address change is announced", func(t *testing.T) {
		const extra = "10.213.0.11"
		run(t, "ip", "-n", l.nsA, "addr", "add", extra+"/24", "dev", l.ifA)
		watch.wait(t, 5*time.Second, "announcement of "+extra, func(e event) bool {
			return e.Record != nil && e.Record.Name == "hearth.local." && e.Record.Data == extra && e.Record.TTL > 0
		})
		run(t, "ip", "-n", l.nsA, "addr", "del", extra+"/24", "dev", l.ifA)
		watch.wait(t, 5*time.Second, "goodbye for "+extra, func(e event) bool {
			return e.Record != nil && e.Record.Name == "hearth.local." && e.Record.Data == extra && e.Record.TTL == 0
		})
		// A goodbye leaves a record in caches for one more second (RFC
		// 6762 §10.1); then avahi knows only the address that stayed.
		time.Sleep(1200 * time.Millisecond)
		for i := 0; ; i++ {
			out, _ := avB.command(t, 10*time.Second, "avahi-resolve", "-4", "-n", "hearth.local")
			if got := strings.Fields(out); len(got) == 2 && got[1] == addrA {
				break
			} else if i == 10 {
				t.Fatalf("avahi-resolve -n hearth.local after the change = %q, want %s", out, addrA)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("goodbye on shutdown", func(t *testing.T) {
		hearth.stop(t)
		seen := map[string]bool{}
		watch.wait(t, 5*time.Second, "goodbyes", func(e event) bool {
			if e.Record != nil && e.Record.TTL == 0 && e.Record.Src == addrA {
				seen[e.Record.Type+" "+e.Record.Name] = true
			}
			return seen["A hearth.local."] && seen["PTR _hearth._tcp.local."] && seen["PTR _https._tcp.local."]
		})
	})

	t.Run("no multicast interface", func(t *testing.T) {
		ns := "hearthC" + strings.TrimPrefix(l.nsA, "hearthA")
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		p := l.helper(t, "announcer without interfaces", ns, "announce", "HD_POLL=200ms")
		e := p.wait(t, 5*time.Second, "waiting state", func(e event) bool { return e.Status != nil && e.Status.State == StateWaiting })
		if !strings.Contains(e.Status.LastError, "no multicast-capable network interface") {
			t.Fatalf("status = %+v, want the missing interface named", e.Status)
		}
		p.stop(t)
		if !strings.Contains(p.stderr.String(), "no multicast-capable network interface") {
			t.Errorf("log does not say why:\n%s", p.stderr)
		}
		r := l.helper(t, "resolver without interfaces", ns, "resolve", "HD_HOST=hearth").result(t, 5*time.Second)
		if !strings.Contains(r.Error, "no multicast-capable network interface") {
			t.Errorf("Resolve without interfaces: %+v", r)
		}
	})
}
