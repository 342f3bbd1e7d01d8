//go:build !hearth_notailnet

package tailnet_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testWriter writes to the test's log until the test ends (tsnet may log
// from its goroutines a little later).
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
	once sync.Once
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		w.t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// knownBackground are goroutines that outlive their test by design; a
// leak check ignores them. tsnet leaves none behind in this version;
// Pebble (tailnettest.StartACME) has no way to stop its validation worker.
var knownBackground = []string{"github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"}

// checkGoroutines fails the test when, after every other cleanup (the
// nodes', the control server's, the DERP relay's), more goroutines run
// than at its start. Call it first.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := stacks()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		var extra []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			extra = newGoroutines(before, stacks())
			if len(extra) == 0 {
				return
			}
		}
		t.Errorf("%d goroutines still run after the test:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
	})
}

// checkNodeGoroutines fails the test when a Node's own goroutines (the
// status watcher, certificate fetches) still run shortly after Close.
func checkNodeGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		left = left[:0]
		for _, g := range stacks() {
			if strings.Contains(g, "appliance/tailnet.(*Node)") || strings.Contains(g, "appliance/tailnet.(*certCache)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("%d of the node's goroutines still run after Close:\n\n%s", len(left), strings.Join(left, "\n\n"))
}

// stacks returns every goroutine's stack but the caller's.
func stacks() []string {
	buf := make([]byte, 4<<20)
	all := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
	return all[1:]
}

// newGoroutines returns the goroutines in now that were not in before,
// told apart by their id, minus the known background ones.
func newGoroutines(before, now []string) []string {
	seen := map[string]bool{}
	for _, g := range before {
		seen[goroutineID(g)] = true
	}
	var extra []string
outer:
	for _, g := range now {
		if seen[goroutineID(g)] {
			continue
		}
		for _, k := range knownBackground {
			if strings.Contains(g, k) {
				continue outer
			}
		}
		extra = append(extra, g)
	}
	return extra
}

// goroutineID is "goroutine 42" from a stack's first line.
func goroutineID(stack string) string {
	first, _, _ := strings.Cut(stack, " [")
	return first
}
