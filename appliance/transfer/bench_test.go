package transfer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/transfer"
)

// BenchmarkSignal is the cost of one signaling message through the
// service: decode, rate, freshness and replay checks, the party check, and
// (relay-only) the candidate filter, up to the publish.
func BenchmarkSignal(b *testing.B) {
	for _, relayOnly := range []bool{false, true} {
		b.Run(fmt.Sprintf("relay_only=%v", relayOnly), func(b *testing.B) {
			h := newHarness(b, false)
			id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad", "relay_only": relayOnly})
			h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
			sdp := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" +
				strings.Repeat("a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0\r\n", 4) +
				"a=candidate:4 1 udp 41885439 198.51.100.1 49170 typ relay raddr 203.0.113.7 rport 40000\r\na=sctp-port:5000\r\n"
			// Each message is stamped with the time it will be sent at: the
			// clock moves 2 s every RateBurst messages, to stay in the limit.
			start := h.clock()
			msgs := make([]json.RawMessage, b.N)
			for i := range msgs {
				at := start.Add(time.Duration(i/transfer.RateBurst+1) * 2 * time.Second)
				msgs[i], _ = json.Marshal(map[string]any{"ts": at.UnixMilli(), "nonce": fmt.Sprintf("nonce-%016d", i), "id": id,
					"sdp": map[string]any{"type": "offer", "sdp": sdp}})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%transfer.RateBurst == 0 {
					b.StopTimer()
					h.advance(2 * time.Second) // stay within the rate limit
					b.StartTimer()
				}
				if err := h.svc.Handle(context.Background(), mumLaptop, transfer.TypeSignal, msgs[i]); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					h.take()
				}
			}
		})
	}
}
