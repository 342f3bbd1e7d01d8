package systemd_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/systemd"
)

// listen opens a unixgram socket standing in for the service manager.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifySequence(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	n := systemd.NewNotifier(nil)
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	n.Ready("serving on :8443")
	if got := read(t, c); !strings.Contains(got, "READY=1") || !strings.Contains(got, "STATUS=serving on :8443") {
		t.Fatalf("first notification = %q, want READY=1 with status", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.RunWatchdog(ctx, func() error { return nil }); close(done) }()
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("watchdog notification = %q", got)
	}
	cancel()
	<-done
	n.Stopping()
	for {
		got := read(t, c)
		if got == "WATCHDOG=1" {
			continue // a ping that raced the cancel
		}
		if !strings.HasPrefix(got, "STOPPING=1") {
			t.Fatalf("last notification = %q, want STOPPING=1", got)
		}
		break
	}
}

func TestWatchdogWithheldWhenUnhealthy(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "100000")
	n := systemd.NewNotifier(nil)
	var healthy atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.RunWatchdog(ctx, func() error {
		if healthy.Load() {
			return nil
		}
		return errors.New("store does not answer")
	})
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("watchdog pinged while the liveness check failed")
	}
	healthy.Store(true)
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Fatalf("after recovery = %q, want WATCHDOG=1", got)
	}
}

func TestOffSystemdIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("LISTEN_FDS", "")
	n := systemd.NewNotifier(nil)
	n.Ready("x")
	n.Stopping()
	if n.WatchdogInterval() != 0 {
		t.Fatal("watchdog interval without systemd")
	}
	ls, err := systemd.Listeners()
	if err != nil || ls != nil {
		t.Fatalf("Listeners() = %v, %v off systemd", ls, err)
	}
}
