package discovery

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// benchRounds is how many announcers TestBenchLAN starts.
const benchRounds = 10

// TestBenchLAN measures, over benchRounds announcers started in namespace
// A (next to avahi-daemon) and observed from namespace B:
//
//   - Run to first answer: a one-shot querier in B asks for <name>.local
//     every 5 ms from before Run starts; the time from Run to its answer
//     (probing takes 750-1000 ms by design, RFC 6762 §8.1);
//   - Run to announced: until Status says announced;
//   - resolve with Go: Resolve(<name>.local) from B, inside the process;
//   - resolve with avahi: `avahi-resolve -4 -n <name>.local` in B (the
//     whole command: D-Bus round trip to avahi-daemon, which may answer
//     from the cache the announcements filled).
//
// It runs from `make bench` (HEARTH_BENCH=1) and writes "key<TAB>value"
// lines to HEARTH_BENCH_OUT when set.
func TestBenchLAN(t *testing.T) {
	if os.Getenv("HEARTH_BENCH") != "1" {
		t.Skip("benchmarks run from `make bench` (HEARTH_BENCH=1)")
	}
	l := newLAN(t)
	l.startAvahi(t, l.nsA, l.ifA, "avahi-a")
	avB := l.startAvahi(t, l.nsB, l.ifB, "avahi-b")

	var toAnswer, toAnnounced, goResolve, avahiResolve []time.Duration
	for i := range benchRounds {
		name := fmt.Sprintf("bench-%d", i)
		q := l.helper(t, "first-answer querier", l.nsB, "resolve", "HD_HOST="+name, "HD_RETRY=5ms", "HD_TIMEOUT=10s")
		p, runAt, st := l.announce(t, name, l.nsA)
		r := q.result(t, 10*time.Second)
		if r.Error != "" || !slices.Contains(r.Addrs, l.addrA) {
			t.Fatalf("round %d: first answer %+v", i, r)
		}
		toAnswer = append(toAnswer, sinceNs(runAt, r.At))
		toAnnounced = append(toAnnounced, sinceNs(runAt, st.At))

		g := l.helper(t, "resolver", l.nsB, "resolve", "HD_HOST="+name+".local").result(t, 10*time.Second)
		if g.Error != "" {
			t.Fatalf("round %d: Resolve: %s", i, g.Error)
		}
		goResolve = append(goResolve, time.Duration(g.Elapsed*float64(time.Millisecond)))

		out, took := avB.command(t, 10*time.Second, "avahi-resolve", "-4", "-n", name+".local")
		if !strings.Contains(out, addrA) {
			t.Fatalf("round %d: avahi-resolve = %q", i, out)
		}
		avahiResolve = append(avahiResolve, took)
		p.stop(t)
	}

	var lines []string
	for _, f := range []struct {
		key string
		ds  []time.Duration
	}{
		{"mdns_run_to_first_answer_ms", toAnswer},
		{"mdns_run_to_announced_ms", toAnnounced},
		{"mdns_resolve_go_ms", goResolve},
		{"mdns_resolve_avahi_ms", avahiResolve},
	} {
		slices.Sort(f.ds)
		median, p90 := f.ds[len(f.ds)/2], f.ds[len(f.ds)*9/10]
		lines = append(lines, fmt.Sprintf("%s_median\t%.1f", f.key, ms(median)), fmt.Sprintf("%s_p90\t%.1f", f.key, ms(p90)))
	}
	report := strings.Join(lines, "\n") + "\n"
	t.Logf("%d rounds:\n%s", benchRounds, report)
	if out := os.Getenv("HEARTH_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(report); err != nil {
			t.Fatal(err)
		}
	}
}
