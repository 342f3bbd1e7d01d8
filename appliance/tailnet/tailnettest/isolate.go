package tailnettest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// envIsolated marks a test process re-executed inside the namespace.
const envIsolated = "HEARTH_TAILNETTEST_ISOLATED"

// EnvVerbose, set to 1, sends the tsnet nodes' logs to stderr.
const EnvVerbose = "HEARTH_TAILNETTEST_VERBOSE"

// Isolate runs the calling test in a private network namespace with only
// loopback, so no tailnet traffic can leave the machine. It reports whether
// the caller is now inside the namespace and should go on. Outside it,
// Isolate re-executes the test binary for just this test in a new network
// namespace (with loopback up, TS_DISABLE_PORTMAPPER=1 and no other TS_*
// variable), waits for it and returns false: the child's outcome (pass,
// fail, skip) is this test's, and the caller must return. It skips the
// test when the process may not create a network namespace (not root): CI
// runs as root.
func Isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envIsolated) != "" {
		if err := upLoopback(); err != nil {
			t.Fatalf("bring loopback up in the test's network namespace: %v", err)
		}
		if err := loopbackOnly(); err != nil {
			t.Fatal(err)
		}
		return true
	}
	if runtime.GOOS != "linux" {
		t.Skip("tailnet tests run in a Linux network namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("tailnet tests need root to create a private network namespace (CI runs them as root)")
	}
	args := []string{"-test.run=" + runPattern(t.Name()), "-test.count=1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(os.Args[0], args...)
	// Tailscale's TS_* settings of this process (a developer's
	// TS_AUTHKEY, a knob an earlier test set) do not reach the child.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TS_") })
	cmd.Env = append(env, envIsolated+"=1", "TS_DISABLE_PORTMAPPER=1")
	cmd.SysProcAttr = newNetNS()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("cannot create a network namespace (%v): tailnet tests need CAP_SYS_ADMIN", err)
		}
		t.Fatalf("run %s in a network namespace: %v", t.Name(), err)
	case err != nil:
		t.Fatalf("%s failed in its network namespace (%v, %s):\n%s", t.Name(), err, time.Since(start).Round(time.Millisecond), out)
	case !bytes.Contains(out, []byte("--- ")):
		t.Fatalf("%s did not run in its network namespace:\n%s", t.Name(), out)
	case bytes.Contains(out, []byte("--- SKIP: "+t.Name()+" ")):
		t.Skipf("skipped in its network namespace:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("ran in a private network namespace in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	}
	return false
}

// runPattern is a -test.run pattern matching exactly the test (or subtest)
// name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// loopbackOnly fails unless the only network interface is loopback.
func loopbackOnly() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list network interfaces: %w", err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("network interface %s is not loopback: run the test through tailnettest.Isolate, so nothing leaves the machine", ifi.Name)
		}
		if ifi.Flags&net.FlagUp == 0 {
			return fmt.Errorf("loopback %s is down", ifi.Name)
		}
	}
	return nil
}

// Isolated reports whether this process runs inside Isolate's namespace.
func Isolated() bool { return os.Getenv(envIsolated) != "" }
