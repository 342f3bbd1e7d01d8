package chat_test

// Benchmarks of the chat service on a real bbolt file, for the figures in
// `make bench` (.ci/bench-chat). They run only when asked for with -bench;
// `go test ./...` runs none of them.
//
//	go test -run '^$' -bench '^BenchmarkPostMessage$' ./appliance/chat/
//	go test -run '^$' -bench '^BenchmarkReads100k$' -benchtime 2000x ./appliance/chat/

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

const (
	benchSenders  = 50      // concurrent posters, as in the HTTP figure
	benchMessages = 100_000 // messages in the channel searched and paged
	benchPage     = 50      // messages per history page
	benchSeed     = 20240601
	// benchFillers post the messages searched and paged, many at once so
	// that they share group commits (filling takes about a minute).
	benchFillers = 100
)

// benchHousehold is a chat service on a fresh store with a few members and
// the default channels.
type benchHousehold struct {
	chat    *chat.Service
	members []auth.User
	general string
}

func newBenchHousehold(tb testing.TB) *benchHousehold {
	tb.Helper()
	st := storetest.Open(tb)
	a, err := auth.New(auth.Config{Store: st, Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		tb.Fatal(err)
	}
	h := &benchHousehold{}
	for i, name := range []string{"mum", "dad", "kid", "gran", "lodger"} {
		role := auth.RoleMember
		if i == 0 {
			role = auth.RoleAdmin
		}
		u, err := a.CreateUser(context.Background(), auth.NewUser{Name: name, Password: "long enough", Role: role})
		if err != nil {
			tb.Fatal(err)
		}
		h.members = append(h.members, u)
	}
	h.chat, err = chat.New(chat.Config{Store: st, Users: a, Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.chat.EnsureDefault(); err != nil {
		tb.Fatal(err)
	}
	cs, err := h.chat.Channels(h.members[0].ID)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "general" {
			h.general = c.ID
		}
	}
	if h.general == "" {
		tb.Fatal("no #general")
	}
	return h
}

// BenchmarkPostMessage posts from benchSenders goroutines at once, each
// post acknowledged only after its (group) commit, as the HTTP handler
// does. msgs/s is the persisted throughput.
func BenchmarkPostMessage(b *testing.B) {
	h := newBenchHousehold(b)
	var n atomic.Uint64
	// RunParallel starts SetParallelism × GOMAXPROCS goroutines.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchSenders + procs - 1) / procs)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := n.Add(1)
		g := newSentences(benchSeed + w)
		u := h.members[int(w)%len(h.members)]
		i := 0
		for pb.Next() {
			i++
			p := chat.Post{Text: g.sentence(), Key: fmt.Sprintf("w%d-%d", w, i)}
			if _, err := h.chat.PostMessage(context.Background(), u, h.general, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkReads100k fills #general with benchMessages messages of Zipf-
// distributed words, then measures search (1–2 word queries) and history
// pages at random positions, reporting p50 and p99 per operation.
func BenchmarkReads100k(b *testing.B) {
	h := newBenchHousehold(b)
	start := time.Now()
	fill(b, h, benchMessages)
	b.Logf("filled #general with %d messages in %v", benchMessages, time.Since(start).Round(time.Millisecond))
	// Searches are measured on the index in its steady state: what the
	// background indexer has not reached yet is indexed now.
	start = time.Now()
	n, err := h.chat.IndexQueued(benchMessages)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed the last %d messages in %v", n, time.Since(start).Round(time.Millisecond))
	reader := h.members[2]

	b.Run("Search", func(b *testing.B) {
		r := rand.New(rand.NewPCG(benchSeed, 2))
		z := newZipf(r)
		lat := make([]time.Duration, 0, b.N)
		type slow struct {
			q    string
			took time.Duration
			n    int
		}
		var slowest []slow
		hits := 0
		b.ResetTimer()
		for range b.N {
			q := query(r, z)
			t0 := time.Now()
			res, err := h.chat.Search(reader.ID, chat.SearchQuery{Text: q})
			took := time.Since(t0)
			lat = append(lat, took)
			if err != nil {
				b.Fatalf("Search(%q): %v", q, err)
			}
			if len(res) > 0 {
				hits++
			}
			slowest = append(slowest, slow{q, took, len(res)})
			slices.SortFunc(slowest, func(a, b slow) int { return int(b.took - a.took) })
			slowest = slowest[:min(len(slowest), 3)]
		}
		b.StopTimer()
		reportPercentiles(b, lat)
		b.ReportMetric(float64(hits)/float64(b.N)*100, "%found")
		for _, s := range slowest {
			if b.N == 1 {
				break // the framework's first, probing run
			}
			b.Logf("slow query %q: %v, %d results", s.q, s.took.Round(time.Microsecond), s.n)
		}
	})

	b.Run("History", func(b *testing.B) {
		r := rand.New(rand.NewPCG(benchSeed, 3))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			before := uint64(benchPage + 1 + r.IntN(benchMessages-benchPage))
			t0 := time.Now()
			p, err := h.chat.History(reader.ID, h.general, before, 0, benchPage)
			lat = append(lat, time.Since(t0))
			if err != nil || len(p.Messages) != benchPage {
				b.Fatalf("History(before %d) = %d messages, %v; want %d", before, len(p.Messages), err, benchPage)
			}
		}
		b.StopTimer()
		reportPercentiles(b, lat)
	})
}

// fill posts n messages from benchFillers goroutines.
func fill(b *testing.B, h *benchHousehold, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchFillers)
	deadline := time.Now().Add(5 * time.Minute)
	for w := range benchFillers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newSentences(benchSeed + uint64(w))
			u := h.members[w%len(h.members)]
			for next.Add(1) <= int64(n) {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("filling %d messages took over 5 minutes", n)
					return
				}
				if _, err := h.chat.PostMessage(context.Background(), u, h.general, chat.Post{Text: g.sentence()}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		return float64(lat[min(max(i, 0), len(lat)-1)]) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "max-ms")
}

// --- Text -----------------------------------------------------------------

// commonWords are frequent English words, most frequent first; the rank a
// word has in the vocabulary decides how often it appears (Zipf).
var commonWords = strings.Fields(`
the to and a i you it of is in that for on my be me so we have do this not
are was just with at but your can all what get if no like up out its know
now go about will one there how they good time got he want see then as
yes ok when think from dinner back would today love tomorrow by here well
did home going our some more need too an or right make work come really
school had them still been over she day night take after thanks sure down
who why where call off which great morning could should let him his her
back tonight week maybe eat food car pick later soon again little why new
said first last next two three long because house kids mum dad gran bed
before thing things way something anyone everyone people water please
sorry fine nice lunch breakfast shop shopping milk bread cheese eggs
coffee tea kitchen garden door key keys phone charger laptop wifi
movie film game games play playing football match bus train station late
early weekend monday tuesday wednesday thursday friday saturday sunday
birthday party cake present presents holiday trip beach park walk dog
cat vet doctor dentist appointment homework teacher class test exam
book books read reading music song guitar piano practice bike ride rain
sunny cold warm hot weather coat shoes bag washing laundry clean cleaning
dishes bin bins recycling fridge oven heating boiler bill bills rent money
bank card pay paid cheap price order delivery parcel post letter email
photo photos picture video link message text called remember forgot
meeting office boss job shift finish finished start started ready done
waiting wait minutes hour hours half quarter clock alarm sleep tired
sick better headache medicine hospital granny grandpa uncle aunt cousin
friend friends neighbour neighbours visit visiting staying leaving arrive
arriving airport flight ticket tickets booked booking hotel camping tent
pizza pasta rice chicken soup salad dessert chocolate biscuits fruit
apples bananas oranges vegetables potatoes carrots onions garlic butter
`)

// vocabulary returns a fixed list of a few thousand words: commonWords
// first, then made-up but pronounceable words (names, places, jargon: the
// long tail of a household's chat).
func vocabulary() []string {
	const size = 3000
	words := slices.Clone(commonWords)
	seen := map[string]bool{}
	for _, w := range words {
		seen[w] = true
	}
	onsets := strings.Fields("b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl sh st th tr")
	nuclei := strings.Fields("a e i o u ai ea ee oo ou")
	codas := []string{"", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "ck"}
	r := rand.New(rand.NewPCG(benchSeed, 1))
	for len(words) < size {
		var sb strings.Builder
		for range 2 + r.IntN(3) {
			sb.WriteString(onsets[r.IntN(len(onsets))])
			sb.WriteString(nuclei[r.IntN(len(nuclei))])
		}
		sb.WriteString(codas[r.IntN(len(codas))])
		if w := sb.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
}

var vocab = sync.OnceValue(vocabulary)

func newZipf(r *rand.Rand) *rand.Zipf {
	return rand.NewZipf(r, 1.07, 2, uint64(len(vocab())-1))
}

// sentences makes chat messages of 3 to 24 Zipf-distributed words.
type sentences struct {
	r *rand.Rand
	z *rand.Zipf
}

func newSentences(seed uint64) *sentences {
	r := rand.New(rand.NewPCG(seed, 0))
	return &sentences{r: r, z: newZipf(r)}
}

func (s *sentences) sentence() string {
	words := vocab()
	n := 3 + s.r.IntN(8) + s.r.IntN(8) + s.r.IntN(8)
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[s.z.Uint64()])
	}
	return sb.String()
}

// query is a search of one or two words, drawn from the same distribution
// as the messages but without the 50 most common (function) words, which
// nobody searches for.
func query(r *rand.Rand, z *rand.Zipf) string {
	words := vocab()
	pick := func() string {
		for {
			if i := z.Uint64(); i >= 50 {
				return words[i]
			}
		}
	}
	if r.IntN(2) == 0 {
		return pick()
	}
	return pick() + " " + pick()
}
