package transfer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/transfer"
)

func TestOfferAcceptSignalFirstAcceptWins(t *testing.T) {
	h := newHarness(t, false)
	// Both of dad's devices are offered it, with the server's word for
	// who sends; no one else is.
	if c := h.send(mumLaptop, transfer.TypeOffer, map[string]any{"to_user": "u-dad", "ref": "r1",
		"files": []map[string]any{{"name": "holiday.jpg", "size": 2048, "type": "image/jpeg"}, {"name": "notes/day 1.txt", "size": 10, "type": "text/plain"}}}); c != "" {
		t.Fatalf("offer = %s", c)
	}
	all := h.take()
	created := to(all, "s-mum-laptop")
	if len(created) != 1 || created[0].typ != transfer.TypeCreated || created[0].data["ref"] != "r1" || created[0].data["code"] != nil {
		t.Fatalf("sender got %v, want transfer.created echoing ref r1, no code", created)
	}
	id := created[0].data["id"].(string)
	if c := h.send(mumLaptop, transfer.TypeResume, map[string]any{"id": id}); c != "not_party" {
		t.Fatalf("resume before accept = %q, want not_party", c)
	}
	for _, s := range []string{"s-dad-phone", "s-dad-laptop"} {
		got := to(all, s)
		if len(got) != 1 || got[0].typ != transfer.TypeIncoming {
			t.Fatalf("%s got %v, want one transfer.incoming", s, got)
		}
		from := got[0].data["from"].(map[string]any)
		if from["user_id"] != "u-mum" || from["name"] != "mum" || from["session_id"] != "s-mum-laptop" || from["device"] != "Firefox on Linux" {
			t.Errorf("incoming from = %v, want mum's laptop as the server knows it", from)
		}
		if got[0].data["total"] != float64(2058) || got[0].data["relay_only"] != false || len(got[0].data["files"].([]any)) != 2 {
			t.Errorf("incoming = %v", got[0].data)
		}
	}
	for _, s := range []string{"s-mum-phone", "s-kid-tablet"} {
		if got := to(all, s); len(got) != 0 {
			t.Errorf("%s got %v, want nothing", s, got)
		}
	}

	// Dad's phone accepts first; his laptop is told it is taken and its
	// own accept is refused.
	if c := h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id}); c != "" {
		t.Fatalf("accept = %s", c)
	}
	evs := h.take()
	acc := to(evs, "s-mum-laptop")
	if len(acc) != 1 || acc[0].typ != transfer.TypeAccepted || acc[0].data["peer"].(map[string]any)["session_id"] != "s-dad-phone" {
		t.Fatalf("sender got %v, want transfer.accepted by dad's phone", acc)
	}
	if got := types(to(evs, "s-dad-laptop")); !slices.Equal(got, []string{transfer.TypeTaken}) {
		t.Fatalf("dad's laptop got %v, want transfer.taken", got)
	}
	if c := h.send(dadLaptop, transfer.TypeAccept, map[string]any{"id": id}); c != "taken" {
		t.Fatalf("second accept = %q, want taken", c)
	}
	if c := h.send(kidTablet, transfer.TypeAccept, map[string]any{"id": id}); c != "taken" {
		t.Fatalf("kid's accept = %q, want taken", c)
	}

	// Signals go between the two parties only, attested.
	offer := map[string]any{"type": "offer", "sdp": "v=0\r\na=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host\r\n"}
	if c := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "sdp": offer}); c != "" {
		t.Fatalf("signal = %s", c)
	}
	evs = h.take()
	if len(evs) != 1 || !slices.Equal(evs[0].Sessions, []string{"s-dad-phone"}) {
		t.Fatalf("signal went to %v, want only dad's phone", evs)
	}
	sig := to(evs, "s-dad-phone")[0].data
	if sig["sdp"].(map[string]any)["sdp"] != offer["sdp"] || sig["from"].(map[string]any)["session_id"] != "s-mum-laptop" {
		t.Fatalf("forwarded signal = %v, want the SDP unchanged (not relay-only), from mum's laptop", sig)
	}
	cand := map[string]any{"candidate": "candidate:2 1 udp 1686052607 203.0.113.7 40000 typ srflx raddr 0.0.0.0 rport 0", "sdpMid": "0", "sdpMLineIndex": 0}
	if c := h.send(dadPhone, transfer.TypeSignal, map[string]any{"id": id, "candidate": cand}); c != "" {
		t.Fatalf("answer candidate = %s", c)
	}
	if evs := h.take(); len(evs) != 1 || !slices.Equal(evs[0].Sessions, []string{"s-mum-laptop"}) {
		t.Fatalf("receiver's signal went to %v", evs)
	}
	for _, c := range []hub.Client{dadLaptop, kidTablet, mumPhone} {
		if code := h.send(c, transfer.TypeSignal, map[string]any{"id": id, "candidate": cand}); code != "not_party" {
			t.Errorf("signal from %s = %q, want not_party", c.SessionID, code)
		}
	}
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("outsiders' signals published %v", evs)
	}
	// A client cannot claim to be someone else.
	if c := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "candidate": cand, "from": map[string]any{"user_id": "u-kid"}}); c != "bad_message" {
		t.Fatalf("signal with a from field = %q, want bad_message", c)
	}
	// Resume reaches the other side when it is online.
	if c := h.send(dadPhone, transfer.TypeResume, map[string]any{"id": id}); c != "" {
		t.Fatal(c)
	}
	if got := types(to(h.take(), "s-mum-laptop")); !slices.Equal(got, []string{transfer.TypeResume}) {
		t.Fatalf("resume reached mum as %v", got)
	}
	// The other side offline: signals are refused "offline".
	h.goOffline("s-dad-phone")
	if c := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "candidate": cand}); c != "offline" {
		t.Fatalf("signal to an offline peer = %q, want offline", c)
	}
}

func TestOfferRefusals(t *testing.T) {
	h := newHarness(t, false)
	files := []map[string]any{{"name": "a", "size": 1, "type": ""}}
	for _, tc := range []struct {
		name   string
		from   hub.Client
		fields map[string]any
		want   string
	}{
		{"nobody online", mumLaptop, map[string]any{"to_user": "u-grandpa", "files": files}, "offline"},
		{"only own session", mumLaptop, map[string]any{"to_session": "s-mum-laptop", "files": files}, "offline"},
		{"two targets", mumLaptop, map[string]any{"to_user": "u-dad", "guest": true, "files": files}, "bad_message"},
		{"no target", mumLaptop, map[string]any{"files": files}, "bad_message"},
		{"no files", mumLaptop, map[string]any{"to_user": "u-dad", "files": []any{}}, "bad_message"},
		{"negative size", mumLaptop, map[string]any{"to_user": "u-dad", "files": []map[string]any{{"name": "a", "size": -1}}}, "bad_message"},
		{"id given", mumLaptop, map[string]any{"to_user": "u-dad", "files": files, "id": "mine"}, "bad_message"},
		{"too many files", mumLaptop, map[string]any{"to_user": "u-dad", "files": make([]map[string]any, transfer.MaxFiles+1)}, "bad_message"},
	} {
		if got := h.send(tc.from, transfer.TypeOffer, tc.fields); got != tc.want {
			t.Errorf("%s: offer = %q, want %q", tc.name, got, tc.want)
		}
	}
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("refused offers published %v", evs)
	}
	// To one's own other device is fine.
	h.offer(mumLaptop, map[string]any{"to_user": "u-mum"})
	if got := to(h.take(), "s-mum-phone"); len(got) != 0 {
		t.Fatal("events were taken by offer()")
	}
	// A session may keep only so many transfers open.
	for i := 1; i < transfer.MaxOpenPerSession; i++ {
		h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	}
	if got := h.send(mumLaptop, transfer.TypeOffer, map[string]any{"to_user": "u-dad", "files": files}); got != "too_fast" {
		t.Fatalf("offer %d = %q, want too_fast", transfer.MaxOpenPerSession+1, got)
	}
}

func TestStaleAndReplayed(t *testing.T) {
	h := newHarness(t, false)
	raw := func(ts time.Time, n string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"ts": ts.UnixMilli(), "nonce": n, "id": "nothing-here"})
		return b
	}
	handle := func(d json.RawMessage) string {
		return code(h.svc.Handle(context.Background(), mumLaptop, transfer.TypeResume, d))
	}
	now := h.clock()
	for _, tc := range []struct {
		name string
		ts   time.Time
		want string
	}{
		{"31 s old", now.Add(-31 * time.Second), "stale"},
		{"29 s old", now.Add(-29 * time.Second), "not_found"},
		{"6 s ahead", now.Add(6 * time.Second), "stale"},
		{"4 s ahead", now.Add(4 * time.Second), "not_found"},
		{"an hour old", now.Add(-time.Hour), "stale"},
	} {
		if got := handle(raw(tc.ts, nonce())); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	msg := raw(now, "replay-me-0123456789")
	if got := handle(msg); got != "not_found" {
		t.Fatalf("first = %q", got)
	}
	if got := handle(msg); got != "replayed" {
		t.Fatalf("replay = %q, want replayed", got)
	}
	// The same nonce from another session is that session's own.
	if got := code(h.svc.Handle(context.Background(), dadPhone, transfer.TypeResume, msg)); got != "not_found" {
		t.Fatalf("same nonce, other session = %q", got)
	}
	// Within the window, a fresher ts does not make a nonce usable again.
	h.advance(20 * time.Second)
	if got := handle(raw(h.clock(), "replay-me-0123456789")); got != "replayed" {
		t.Fatalf("nonce reused 20 s later = %q, want replayed", got)
	}
	// The clock jumps back a minute: the old message is now from the
	// future, and still refused; forward an hour: stale.
	h.advance(-80 * time.Second)
	if got := handle(msg); got != "stale" {
		t.Fatalf("replay after the clock went back = %q, want stale", got)
	}
	h.advance(time.Hour)
	if got := handle(msg); got != "stale" {
		t.Fatalf("replay after the clock jumped forward = %q, want stale", got)
	}
	// Nonces are forgotten once stale, and a fresh message with a used
	// nonce is then accepted.
	if got := handle(raw(h.clock(), "replay-me-0123456789")); got != "not_found" {
		t.Fatalf("nonce reused after the window = %q, want accepted", got)
	}
	// What is remembered is bounded by the window: old nonces and idle
	// buckets are dropped.
	if n, b := h.svc.GuardSize(); n != 1 || b != 1 {
		t.Fatalf("after the window: %d nonces, %d buckets held, want the last message's only", n, b)
	}
	for _, bad := range []string{"short", strings.Repeat("n", 65), "with\x01control-chars"} {
		if got := handle(raw(h.clock(), bad)); got != "bad_message" {
			t.Errorf("nonce %q = %q, want bad_message", bad, got)
		}
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, false)
	send := func(c hub.Client) string { return h.send(c, transfer.TypeResume, map[string]any{"id": "nothing-here"}) }
	for i := range transfer.RateBurst {
		if got := send(mumLaptop); got != "not_found" {
			t.Fatalf("message %d = %q, want accepted (not_found)", i+1, got)
		}
	}
	if got := send(mumLaptop); got != "too_fast" {
		t.Fatalf("message %d = %q, want too_fast", transfer.RateBurst+1, got)
	}
	if got := send(dadPhone); got != "not_found" {
		t.Fatalf("another session = %q, want its own budget", got)
	}
	h.advance(time.Second)
	for i := range transfer.RateLimit {
		if got := send(mumLaptop); got != "not_found" {
			t.Fatalf("after 1 s, message %d = %q", i+1, got)
		}
	}
	if got := send(mumLaptop); got != "too_fast" {
		t.Fatalf("after 1 s, message %d = %q, want too_fast", transfer.RateLimit+1, got)
	}
	// A clock going back refills nothing.
	h.advance(-time.Hour)
	if got := send(mumLaptop); got != "too_fast" {
		t.Fatalf("after the clock went back = %q, want still too_fast", got)
	}
}

func TestSizeLimit(t *testing.T) {
	h := newHarness(t, false)
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
	h.take()
	sdp := "v=0\r\n" + strings.Repeat("a=x-filler:0123456789abcdef0123456789abcdef0123456789abcdef01234\r\n", 900)
	if got := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "sdp": map[string]any{"type": "offer", "sdp": sdp}}); got != "" {
		t.Fatalf("SDP of %d bytes = %q, want forwarded", len(sdp), got)
	}
	big := sdp + strings.Repeat("a=x-filler:0123456789abcdef0123456789abcdef0123456789abcdef01234\r\n", 100)
	if got := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "sdp": map[string]any{"type": "offer", "sdp": big}}); got != "too_large" {
		t.Fatalf("SDP of %d bytes = %q, want too_large", len(big), got)
	}
	if evs := h.take(); len(evs) != 1 {
		t.Fatalf("published %d signals, want 1", len(evs))
	}
}

func TestDeclineAndCancel(t *testing.T) {
	h := newHarness(t, true)
	// Offered to both of dad's devices: declined only when both decline.
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.take()
	if c := h.send(dadPhone, transfer.TypeDecline, map[string]any{"id": id}); c != "" {
		t.Fatal(c)
	}
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("one of two declines published %v", evs)
	}
	if c := h.send(kidTablet, transfer.TypeDecline, map[string]any{"id": id}); c != "not_party" {
		t.Fatalf("kid declines = %q, want not_party", c)
	}
	h.send(dadLaptop, transfer.TypeDecline, map[string]any{"id": id})
	got := to(h.take(), "s-mum-laptop")
	if len(got) != 1 || got[0].typ != transfer.TypeDeclined || got[0].data["peer"].(map[string]any)["user_id"] != "u-dad" {
		t.Fatalf("sender got %v, want transfer.declined by dad", got)
	}
	if c := h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id}); c != "not_found" {
		t.Fatalf("accept after decline = %q, want not_found", c)
	}
	h.advance(time.Second)
	// A device offer is declined at once.
	id = h.offer(mumLaptop, map[string]any{"to_session": "s-kid-tablet"})
	h.take()
	h.send(kidTablet, transfer.TypeDecline, map[string]any{"id": id})
	if got := types(to(h.take(), "s-mum-laptop")); !slices.Equal(got, []string{transfer.TypeDeclined}) {
		t.Fatalf("device decline reached sender as %v", got)
	}

	h.advance(time.Second)
	// The sender cancels before anyone accepts: the offered devices hear.
	id = h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.take()
	h.send(mumLaptop, transfer.TypeCancel, map[string]any{"id": id, "reason": "wrong file"})
	evs := h.take()
	for _, s := range []string{"s-dad-phone", "s-dad-laptop"} {
		g := to(evs, s)
		if len(g) != 1 || g[0].typ != transfer.TypeCancelled || g[0].data["reason"] != "wrong file" || g[0].data["by"].(map[string]any)["session_id"] != "s-mum-laptop" {
			t.Fatalf("%s got %v", s, g)
		}
	}
	h.advance(time.Second)
	// The receiver cancels mid-way: the sender hears, no one else.
	id = h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.send(dadLaptop, transfer.TypeAccept, map[string]any{"id": id})
	h.take()
	if c := h.send(dadPhone, transfer.TypeCancel, map[string]any{"id": id}); c != "not_party" {
		t.Fatalf("the other device cancels = %q, want not_party", c)
	}
	h.send(dadLaptop, transfer.TypeCancel, map[string]any{"id": id, "reason": "disk_full"})
	evs = h.take()
	if len(evs) != 1 || !slices.Equal(evs[0].Sessions, []string{"s-mum-laptop"}) || evs[0].Type != transfer.TypeCancelled {
		t.Fatalf("receiver's cancel published %v", evs)
	}

	hist, err := h.svc.History("u-mum")
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, r := range hist {
		results = append(results, r.Direction+" "+r.Result+" "+r.Peer)
	}
	want := []string{"sent cancelled dad", "sent cancelled dad", "sent declined kid", "sent declined dad"}
	if !slices.Equal(results, want) {
		t.Fatalf("mum's history = %q, want newest first %q", results, want)
	}
	hist, _ = h.svc.History("u-dad")
	if len(hist) != 2 || hist[0].Result != "cancelled" || hist[0].Direction != "received" || hist[1].Result != "declined" {
		t.Fatalf("dad's history = %+v", hist)
	}
}

func TestRelayOnlyFiltering(t *testing.T) {
	h := newHarness(t, false)
	h.send(mumLaptop, transfer.TypeOffer, map[string]any{"to_user": "u-dad", "relay_only": true, "files": []map[string]any{{"name": "a", "size": 1}}})
	got0 := to(h.take(), "s-dad-phone")
	if len(got0) != 1 || got0[0].data["relay_only"] != true {
		t.Fatalf("incoming = %v, want relay_only", got0)
	}
	id := got0[0].data["id"].(string)
	h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
	h.take()
	for _, tc := range []struct {
		cand    string
		forward bool
	}{
		{"candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0", false},
		{"candidate:1 1 udp 2122260223 3f1c2a7e-1d2b-4c5e-9f00-123456789abc.local 54321 typ host", false},
		{"candidate:2 1 udp 1686052607 203.0.113.7 40000 typ srflx raddr 192.168.1.20 rport 54321", false},
		{"candidate:3 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active", false},
		{"candidate:4 1 udp 41885439 198.51.100.1 49170 typ relay raddr 203.0.113.7 rport 40000", true},
		{"candidate:5 1 udp 1 10.0.0.1 9 typo relay", false},
		{"", true}, // end of candidates
	} {
		if c := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "candidate": map[string]any{"candidate": tc.cand, "sdpMid": "0"}}); c != "" {
			t.Fatalf("candidate %q = %q, want silently handled", tc.cand, c)
		}
		evs := h.take()
		if (len(evs) == 1) != tc.forward {
			t.Errorf("candidate %q: forwarded %d, want forwarded=%v", tc.cand, len(evs), tc.forward)
		}
	}
	sdp := strings.Join([]string{
		"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"m=application 54321 UDP/DTLS/SCTP webrtc-datachannel",
		"c=IN IP4 192.168.1.20",
		"a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0",
		"a=candidate:2 1 udp 1686052607 203.0.113.7 40000 typ srflx raddr 192.168.1.20 rport 54321",
		"a=candidate:6 1 udp 2122262783 fd00::20 54322 typ host",
		"a=candidate:4 1 udp 41885439 198.51.100.1 49170 typ relay raddr 203.0.113.7 rport 40000",
		"a=end-of-candidates", "a=sctp-port:5000", "",
	}, "\r\n")
	if c := h.send(mumLaptop, transfer.TypeSignal, map[string]any{"id": id, "sdp": map[string]any{"type": "offer", "sdp": sdp}}); c != "" {
		t.Fatal(c)
	}
	got := to(h.take(), "s-dad-phone")[0].data["sdp"].(map[string]any)["sdp"].(string)
	want := strings.Join([]string{
		"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"m=application 54321 UDP/DTLS/SCTP webrtc-datachannel",
		"c=IN IP4 0.0.0.0",
		"a=candidate:4 1 udp 41885439 198.51.100.1 49170 typ relay raddr 203.0.113.7 rport 40000",
		"a=end-of-candidates", "a=sctp-port:5000", "",
	}, "\r\n")
	if got != want {
		t.Fatalf("relay-only SDP =\n%q\nwant\n%q", got, want)
	}
	for _, leak := range []string{"192.168.1.20 54321", "fd00::20", "typ srflx", "typ host"} {
		if strings.Contains(got, leak) {
			t.Errorf("forwarded SDP still has %q", leak)
		}
	}
}

func TestDevicesList(t *testing.T) {
	h := newHarness(t, false)
	h.comeOnline(dadPhone) // a second tab of the same session
	h.comeOnline(hub.Client{UserID: "guest:x", SessionID: "g_x", Name: "guest", Guest: true})
	var got []string
	for _, p := range h.svc.Devices(mumLaptop) {
		got = append(got, fmt.Sprintf("%s/%s/%s", p.Name, p.Device, p.SessionID))
	}
	want := []string{"dad/Safari on iPhone/s-dad-phone", "dad/hearth CLI/s-dad-laptop", "kid/Safari on iPad/s-kid-tablet", "mum/Chrome on Android/s-mum-phone"}
	if !slices.Equal(got, want) {
		t.Fatalf("Devices(mum's laptop) = %q, want %q", got, want)
	}
}

func TestResultsRecordedAndForgotten(t *testing.T) {
	h := newHarness(t, true)
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
	if c := h.send(dadPhone, transfer.TypeResult, map[string]any{"id": id, "result": "done", "bytes": 2058, "files": 2}); c != "" {
		t.Fatal(c)
	}
	if c := h.send(kidTablet, transfer.TypeResult, map[string]any{"id": id, "result": "done"}); c != "not_party" {
		t.Fatalf("kid's result = %q, want not_party", c)
	}
	h.advance(time.Second)
	if c := h.send(mumLaptop, transfer.TypeResult, map[string]any{"id": id, "result": "done", "bytes": 2058, "files": 2}); c != "" {
		t.Fatal(c)
	}
	if st := h.svc.Stats(); st.Live != 0 {
		t.Fatalf("both sides reported; %d transfers still live", st.Live)
	}
	if c := h.send(dadPhone, transfer.TypeResume, map[string]any{"id": id}); c != "not_found" {
		t.Fatalf("resume after both finished = %q, want not_found", c)
	}
	// A late report on a forgotten transfer updates the record.
	if c := h.send(dadPhone, transfer.TypeResult, map[string]any{"id": id, "result": "failed", "bytes": 1000, "files": 1}); c != "" {
		t.Fatalf("late result = %q", c)
	}
	if c := h.send(dadPhone, transfer.TypeResult, map[string]any{"id": "never-was", "result": "done"}); c != "not_found" {
		t.Fatalf("result for an unknown transfer = %q, want not_found", c)
	}
	mum, _ := h.svc.History("u-mum")
	dad, _ := h.svc.History("u-dad")
	if len(mum) != 1 || mum[0].Result != "done" || mum[0].Direction != "sent" || mum[0].Peer != "dad" || mum[0].PeerDevice != "Safari on iPhone" ||
		mum[0].Bytes != 2058 || mum[0].Done != 2 || mum[0].FileCount != 2 || mum[0].Files[1].Name != "notes/day 1.txt" {
		t.Fatalf("mum's history = %+v", mum)
	}
	if len(dad) != 1 || dad[0].Result != "failed" || dad[0].Direction != "received" || dad[0].Peer != "mum" || dad[0].Bytes != 1000 {
		t.Fatalf("dad's history = %+v", dad)
	}
	if n, err := h.svc.ClearHistory("u-mum"); err != nil || n != 1 {
		t.Fatalf("ClearHistory = %d, %v", n, err)
	}
	if mum, _ := h.svc.History("u-mum"); len(mum) != 0 {
		t.Fatalf("after clearing, mum's history = %+v", mum)
	}
	if dad, _ := h.svc.History("u-dad"); len(dad) != 1 {
		t.Fatal("clearing mum's history touched dad's")
	}
}

func TestForgottenAfterInactivity(t *testing.T) {
	h := newHarness(t, true)
	// An offer nobody answers is forgotten after an hour.
	pending := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	// An accepted transfer whose receiver goes away waits ten minutes.
	waiting := h.offer(mumPhone, map[string]any{"to_user": "u-kid"})
	h.send(kidTablet, transfer.TypeAccept, map[string]any{"id": waiting})
	h.take()
	h.goOffline("s-kid-tablet")
	h.svc.Sweep()
	h.advance(9 * time.Minute)
	h.svc.Sweep()
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("after 9 minutes away: %v", evs)
	}
	h.advance(2 * time.Minute)
	h.svc.Sweep()
	evs := h.take()
	g := to(evs, "s-mum-phone")
	if len(g) != 1 || g[0].typ != transfer.TypeGone || g[0].data["id"] != waiting || g[0].data["reason"] != "timeout" {
		t.Fatalf("after 11 minutes away the sender got %v, want transfer.gone timeout", g)
	}
	// The receiver came back within the window? Then nothing happens:
	// tested by the pending offer, whose parties stayed online.
	if st := h.svc.Stats(); st.Live != 1 {
		t.Fatalf("live = %d, want the pending offer only", st.Live)
	}
	// A clock jumping back changes nothing; forward past the hour, the
	// pending offer goes.
	h.advance(-3 * time.Hour)
	h.svc.Sweep()
	if st := h.svc.Stats(); st.Live != 1 {
		t.Fatalf("after the clock went back, live = %d", st.Live)
	}
	h.advance(3*time.Hour + 50*time.Minute)
	h.svc.Sweep()
	evs = h.take()
	for _, s := range []string{"s-mum-laptop", "s-dad-phone", "s-dad-laptop"} {
		if g := to(evs, s); len(g) != 1 || g[0].typ != transfer.TypeGone || g[0].data["id"] != pending || g[0].data["reason"] != "expired" {
			t.Fatalf("%s got %v, want transfer.gone expired", s, g)
		}
	}
	mum, _ := h.svc.History("u-mum")
	if len(mum) != 2 || mum[0].ID != pending || mum[0].Result != "expired" || mum[0].Peer != "dad" || mum[1].ID != waiting || mum[1].Result != "expired" {
		t.Fatalf("mum's history = %+v, want both expired transfers, newest first", mum)
	}
	kid, _ := h.svc.History("u-kid")
	if len(kid) != 1 || kid[0].Result != "expired" || kid[0].Direction != "received" {
		t.Fatalf("kid's history = %+v", kid)
	}

	// A party that reconnects in time keeps the transfer.
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
	h.goOffline("s-dad-phone")
	h.svc.Sweep()
	h.advance(8 * time.Minute)
	h.comeOnline(dadPhone)
	h.svc.Sweep()
	h.advance(8 * time.Minute)
	h.svc.Sweep()
	if c := h.send(dadPhone, transfer.TypeResume, map[string]any{"id": id}); c != "" {
		t.Fatalf("resume after coming back = %q", c)
	}
}

func TestForgetUser(t *testing.T) {
	h := newHarness(t, false)
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
	h.take()
	h.svc.ForgetUser("u-dad")
	g := to(h.take(), "s-mum-laptop")
	if len(g) != 1 || g[0].typ != transfer.TypeGone || g[0].data["reason"] != "disabled" {
		t.Fatalf("sender got %v, want transfer.gone disabled", g)
	}
}

// A party that reported its result keeps it: when the transfer is later
// forgotten, it is not told, and its history is not overwritten.
func TestReportedPartyKeepsItsResult(t *testing.T) {
	h := newHarness(t, true)
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id})
	// Bytes flow for two hours without a word to the appliance: both are
	// connected, so the transfer stays.
	for range 8 {
		h.advance(15 * time.Minute)
		h.svc.Sweep()
	}
	if evs := h.take(); len(evs) != 2 || evs[0].Type != transfer.TypeAccepted || evs[1].Type != transfer.TypeTaken {
		t.Fatalf("a connected, accepted transfer was forgotten: %v", evs)
	}
	h.send(dadPhone, transfer.TypeResult, map[string]any{"id": id, "result": "done", "bytes": 2058, "files": 2})
	h.goOffline("s-dad-phone")
	h.svc.Sweep()
	h.advance(transfer.ResumeWait + time.Minute)
	h.svc.Sweep()
	evs := h.take()
	if got := types(to(evs, "s-mum-laptop")); !slices.Equal(got, []string{transfer.TypeGone}) {
		t.Fatalf("sender got %v, want transfer.gone", got)
	}
	if got := to(evs, "s-dad-phone"); len(got) != 0 {
		t.Fatalf("receiver, already done, got %v", got)
	}
	dad, _ := h.svc.History("u-dad")
	mum, _ := h.svc.History("u-mum")
	if len(dad) != 1 || dad[0].Result != "done" || len(mum) != 1 || mum[0].Result != "expired" {
		t.Fatalf("history: dad %+v, mum %+v; want done and expired", dad, mum)
	}
}

// Many devices accepting at once: exactly one wins, the rest hear taken.
func TestFirstAcceptWinsUnderRace(t *testing.T) {
	h := newHarness(t, false)
	var devs []hub.Client
	for i := range 20 {
		c := hub.Client{UserID: "u-dad", SessionID: fmt.Sprintf("s-dad-%02d", i), Name: "dad"}
		devs = append(devs, c)
		h.comeOnline(c)
	}
	id := h.offer(mumLaptop, map[string]any{"to_user": "u-dad"})
	h.take()
	codes := make([]string, len(devs))
	var wg sync.WaitGroup
	for i, c := range devs {
		wg.Go(func() { codes[i] = h.send(c, transfer.TypeAccept, map[string]any{"id": id}) })
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case "":
			won++
		case "taken":
		default:
			t.Fatalf("accept = %q", c)
		}
	}
	evs := h.take()
	if acc := to(evs, "s-mum-laptop"); won != 1 || len(acc) != 1 || acc[0].typ != transfer.TypeAccepted {
		t.Fatalf("%d accepts won, sender got %v; want exactly one", won, acc)
	}
}
