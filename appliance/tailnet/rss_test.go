//go:build !hearth_notailnet

package tailnet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/tailnet"
	"github.com/hearth-home/hearth/appliance/tailnet/tailnettest"
)

// helperEnv names what a re-executed test binary does instead of testing.
const helperEnv = "HEARTH_TAILNET_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// memReport is what the rss helper prints.
type memReport struct {
	RSSKiB    int64   `json:"rss_kib"`
	AnonKiB   int64   `json:"anon_kib"` // anonymous (heap, stacks), not the binary's pages
	HWMKiB    int64   `json:"hwm_kib"`
	HeapKiB   uint64  `json:"heap_kib"`
	Routines  int     `json:"goroutines"`
	UpSeconds float64 `json:"up_s"`
	Error     string  `json:"error,omitempty"`
}

// runHelper runs the "idle" helper (nothing but waiting) or the "node"
// helper (a Node up on the tailnet at HELPER_CONTROL serving HTTP on :80),
// waits HELPER_IDLE, prints a memReport and waits for stdin to close.
func runHelper(mode string) int {
	report := memReport{}
	start := time.Now()
	if mode == "node" {
		n, err := tailnet.New(tailnet.Config{Dir: os.Getenv("HELPER_DIR"), AuthKey: authKey, ControlURL: os.Getenv("HELPER_CONTROL")})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = n.Start(ctx)
			cancel()
		}
		if err != nil {
			json.NewEncoder(os.Stdout).Encode(memReport{Error: err.Error()})
			return 1
		}
		defer n.Close()
		ln, err := n.Listen("tcp", ":80")
		if err != nil {
			json.NewEncoder(os.Stdout).Encode(memReport{Error: err.Error()})
			return 1
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		report.UpSeconds = time.Since(start).Seconds()
		fmt.Println("up")
	}
	idle, _ := time.ParseDuration(os.Getenv("HELPER_IDLE"))
	time.Sleep(idle)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	report.HeapKiB = ms.HeapAlloc >> 10
	report.Routines = runtime.NumGoroutine()
	report.RSSKiB, report.HWMKiB, report.AnonKiB = procStatus("VmRSS"), procStatus("VmHWM"), procStatus("RssAnon")
	json.NewEncoder(os.Stdout).Encode(report)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func procStatus(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			k, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return k
		}
	}
	return 0
}

// TestIdleRSS measures the resident memory a Node costs: a process idling
// with a Node up on the tailnet (one peer has fetched a page) against the
// same process idling without one. A figure for the closing note, not a
// check: it runs only with HEARTH_TAILNET_RSS=1 (and a limit in MiB as
// HEARTH_TAILNET_RSS_MAX fails it when exceeded).
func TestIdleRSS(t *testing.T) {
	if os.Getenv("HEARTH_TAILNET_RSS") == "" {
		t.Skip("a measurement: set HEARTH_TAILNET_RSS=1 to run it")
	}
	if !tailnettest.Isolate(t) {
		return
	}
	ctl := tailnettest.StartControl(t, tailnettest.ControlConfig{AuthKey: authKey})
	idle := "10s"
	run := func(mode string) memReport {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_CONTROL="+ctl.URL, "HELPER_DIR="+t.TempDir(), "HELPER_IDLE="+idle)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { stdin.Close(); cmd.Wait() }()
		sc := bufio.NewScanner(stdout)
		var rep memReport
		for sc.Scan() {
			if sc.Text() == "up" {
				phone := ctl.NewClient(t, "phone-"+mode)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				if body, err := get(ctx, phone.HTTPClient(), "http://hearth/"); err != nil || body != "ok" {
					t.Errorf("GET from the phone = %q, %v", body, err)
				}
				cancel()
				continue
			}
			if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
				t.Fatalf("helper said %q", sc.Text())
			}
			break
		}
		if rep.Error != "" {
			t.Fatalf("%s helper: %s", mode, rep.Error)
		}
		return rep
	}
	off, on := run("idle"), run("node")
	mib := func(k int64) float64 { return float64(k) / 1024 }
	t.Logf("idle RSS without a node: %.1f MiB (%.1f MiB anonymous; heap %.1f MiB, %d goroutines)",
		mib(off.RSSKiB), mib(off.AnonKiB), mib(int64(off.HeapKiB)), off.Routines)
	t.Logf("idle RSS with a node up %s: %.1f MiB (%.1f MiB anonymous, peak %.1f MiB; heap %.1f MiB, %d goroutines; up in %.2fs)",
		idle, mib(on.RSSKiB), mib(on.AnonKiB), mib(on.HWMKiB), mib(int64(on.HeapKiB)), on.Routines, on.UpSeconds)
	t.Logf("the node costs %.1f MiB RSS, %.1f MiB of it anonymous", mib(on.RSSKiB-off.RSSKiB), mib(on.AnonKiB-off.AnonKiB))
	if max, _ := strconv.Atoi(os.Getenv("HEARTH_TAILNET_RSS_MAX")); max > 0 && on.RSSKiB-off.RSSKiB > int64(max)<<10 {
		t.Errorf("the node costs %d KiB, more than %d MiB", on.RSSKiB-off.RSSKiB, max)
	}
}
