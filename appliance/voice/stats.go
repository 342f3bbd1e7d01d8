package voice

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the service's figures. Counters count from New.
type Stats struct {
	Rooms        int // rooms with someone in them
	Participants int // people in calls
	Connected    int // of which with media flowing (ICE and DTLS up)
	Talking      int // whose audio is forwarded now (unmuted, with the floor where needed)

	Joins   uint64 // calls joined
	Refused uint64 // joins refused (permission, room full, bad offer, rate)

	PacketsIn        uint64 // RTP packets received from participants
	BytesIn          uint64 // their payload bytes
	PacketsForwarded uint64 // RTP packets sent to listeners (one per listener)
	BytesForwarded   uint64 // their payload bytes
	PacketsMuted     uint64 // received but not forwarded: muted or without the floor
	PacketsInvalid   uint64 // received and dropped: not Opus, malformed, over the rate limit, a replaced track
	PacketsLostIn    uint64 // gaps in the sequence numbers participants sent
	PacketsLostOut   uint64 // packets listeners reported lost (RTCP receiver reports)

	// Latency is the forwarding latency added by the appliance: from a
	// packet read (decrypted) to its copy for one listener written
	// (encrypted and handed to the socket), one sample per copy.
	Latency Histogram
}

// Histogram is a latency distribution in fixed buckets.
type Histogram struct {
	// Bounds are the buckets' upper bounds, ascending.
	Bounds []time.Duration
	// Counts has a count per bucket (not cumulative), and one more for
	// samples above the last bound.
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// Quantile returns the upper bound of the bucket holding quantile q (0-1),
// or 0 without samples. Above the last bound it returns the last bound.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	want := uint64(q*float64(h.Count) + 0.5)
	want = max(want, 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= want {
			return h.Bounds[min(i, len(h.Bounds)-1)]
		}
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Mean returns the average sample, or 0 without samples.
func (h Histogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// Sub returns the samples in h that are not in earlier, an earlier
// snapshot of the same histogram: the distribution over an interval.
func (h Histogram) Sub(earlier Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Count: h.Count - earlier.Count, Sum: h.Sum - earlier.Sum}
	for i := range h.Counts {
		out.Counts[i] = h.Counts[i]
		if i < len(earlier.Counts) {
			out.Counts[i] -= earlier.Counts[i]
		}
	}
	return out
}

// The latency histogram has four buckets per octave from 2^minOctave ns
// (about 1 µs) to 2^maxOctave ns (about 1 s), and one below.
const (
	minOctave   = 10
	maxOctave   = 30
	subBuckets  = 4
	histBuckets = (maxOctave-minOctave)*subBuckets + 1
)

var histBounds = func() []time.Duration {
	b := make([]time.Duration, histBuckets)
	b[0] = 1 << minOctave
	for i := 1; i < histBuckets; i++ {
		e, sub := minOctave+(i-1)/subBuckets, (i-1)%subBuckets
		b[i] = time.Duration((uint64(1) << e) * uint64(subBuckets+sub+1) / subBuckets)
	}
	return b
}()

// histogram is the lock-free recording side of a Histogram.
type histogram struct {
	counts [histBuckets + 1]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
}

func (h *histogram) record(d time.Duration) {
	ns := uint64(max(d, 0))
	h.counts[bucketOf(ns)].Add(1)
	h.n.Add(1)
	h.sum.Add(ns)
}

func bucketOf(ns uint64) int {
	if ns <= 1<<minOctave {
		return 0
	}
	ns-- // bounds are inclusive
	e := bits.Len64(ns) - 1
	if e >= maxOctave {
		return histBuckets
	}
	sub := int(ns>>(e-2)) & (subBuckets - 1)
	return 1 + (e-minOctave)*subBuckets + sub
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: histBounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	out.Count = h.n.Load()
	out.Sum = time.Duration(h.sum.Load())
	return out
}

// counters are the service-wide figures, updated without locks.
type counters struct {
	joins, refused                atomic.Uint64
	packetsIn, bytesIn            atomic.Uint64
	packetsFwd, bytesFwd          atomic.Uint64
	packetsMuted, packetsInvalid  atomic.Uint64
	packetsLostIn, packetsLostOut atomic.Uint64
	latency                       histogram
}

// Stats returns the current figures.
func (s *Service) Stats() Stats {
	st := Stats{
		Joins: s.counts.joins.Load(), Refused: s.counts.refused.Load(),
		PacketsIn: s.counts.packetsIn.Load(), BytesIn: s.counts.bytesIn.Load(),
		PacketsForwarded: s.counts.packetsFwd.Load(), BytesForwarded: s.counts.bytesFwd.Load(),
		PacketsMuted: s.counts.packetsMuted.Load(), PacketsInvalid: s.counts.packetsInvalid.Load(),
		PacketsLostIn: s.counts.packetsLostIn.Load(), PacketsLostOut: s.counts.packetsLostOut.Load(),
		Latency: s.counts.latency.snapshot(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Rooms = len(s.rooms)
	for _, r := range s.rooms {
		for _, p := range r.parts {
			st.Participants++
			if p.connected {
				st.Connected++
			}
			if p.open.Load() {
				st.Talking++
			}
		}
	}
	return st
}

// bucket is a token bucket: rate tokens per second, up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64) *bucket { return &bucket{rate: rate, burst: burst, tokens: burst} }

func (b *bucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket has refilled (so it can be forgotten).
func (b *bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst
}
