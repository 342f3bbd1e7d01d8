package transfer_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/transfer"
)

var codeRE = regexp.MustCompile(`^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{10}$`)

// guestOffer makes a guest offer from mum's laptop and returns its ID and
// pairing code.
func guestOffer(t *testing.T, h *harness) (id, code string, expires time.Time) {
	t.Helper()
	if c := h.send(mumLaptop, transfer.TypeOffer, map[string]any{"guest": true, "files": []map[string]any{{"name": "photo.jpg", "size": 5, "type": "image/jpeg"}}}); c != "" {
		t.Fatalf("guest offer = %s", c)
	}
	evs := h.take()
	if len(evs) != 1 || !slices.Equal(evs[0].Sessions, []string{"s-mum-laptop"}) {
		t.Fatalf("guest offer published %v, want only transfer.created to the sender", evs)
	}
	d := to(evs, "s-mum-laptop")[0].data
	exp, err := time.Parse(time.RFC3339, d["expires"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return d["id"].(string), d["code"].(string), exp
}

func TestGuestPairing(t *testing.T) {
	h := newHarness(t, true)
	id, code, exp := guestOffer(t, h)
	if !codeRE.MatchString(code) {
		t.Fatalf("code %q is not 10 Crockford base-32 characters", code)
	}
	if want := h.clock().Add(transfer.DefaultCodeTTL); !exp.Equal(want) {
		t.Fatalf("code expires %v, want %v", exp, want)
	}
	if _, err := h.svc.Pair("0000000000", "192.0.2.1", "Firefox on Android"); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("Pair(wrong code) = %v, want ErrBadCode", err)
	}
	// Typed the way people type: lower case, with a dash, O for 0.
	typed := strings.ToLower(code[:5] + "-" + code[5:])
	typed = strings.ReplaceAll(typed, "0", "o")
	tk, err := h.svc.Pair(typed, "192.0.2.1", "Firefox on Android")
	if err != nil {
		t.Fatalf("Pair(%q) = %v", typed, err)
	}
	if !strings.HasPrefix(tk.Token, "hg_") || tk.Transfer.ID != id || !tk.Transfer.RelayOnly || tk.Transfer.From.Name != "mum" || len(tk.Transfer.Files) != 1 {
		t.Fatalf("ticket = %+v, want one for %s, relay-only by default", tk, id)
	}
	if !tk.Expires.Equal(h.clock().Add(transfer.TicketTTL)) {
		t.Fatalf("ticket expires %v, want in an hour", tk.Expires)
	}
	if _, err := h.svc.Pair(code, "192.0.2.1", ""); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("Pair(used code) = %v, want ErrBadCode", err)
	}
	guest, until, err := h.svc.Guest(tk.Token)
	if err != nil || !guest.Guest || guest.UserID != "guest:"+id || !until.Equal(tk.Expires) {
		t.Fatalf("Guest(ticket) = %+v, %v, %v", guest, until, err)
	}
	if _, _, err := h.svc.Guest(tk.Token + "x"); !errors.Is(err, transfer.ErrBadTicket) {
		t.Fatalf("Guest(wrong ticket) = %v", err)
	}
	h.comeOnline(guest)

	// The guest may act only on its transfer, and not offer.
	other := h.offer(mumPhone, map[string]any{"to_user": "u-dad"})
	h.take()
	if c := h.send(guest, transfer.TypeAccept, map[string]any{"id": other}); c != "not_party" {
		t.Fatalf("guest accepts another transfer = %q, want not_party", c)
	}
	if c := h.send(guest, transfer.TypeOffer, map[string]any{"to_user": "u-dad", "files": []map[string]any{{"name": "x", "size": 1}}}); c != "not_party" {
		t.Fatalf("guest offers = %q, want not_party", c)
	}
	// Members cannot take the guest's transfer.
	if c := h.send(dadPhone, transfer.TypeAccept, map[string]any{"id": id}); c != "not_party" {
		t.Fatalf("a member accepts the guest transfer = %q, want not_party", c)
	}
	if c := h.send(guest, transfer.TypeAccept, map[string]any{"id": id}); c != "" {
		t.Fatalf("guest accept = %q", c)
	}
	acc := to(h.take(), "s-mum-laptop")
	if len(acc) != 1 || acc[0].typ != transfer.TypeAccepted {
		t.Fatalf("sender got %v", acc)
	}
	peer := acc[0].data["peer"].(map[string]any)
	if peer["user_id"] != "guest:"+id || peer["name"] != "guest" || peer["device"] != "Firefox on Android" {
		t.Fatalf("accepted peer = %v", peer)
	}
	// Signals flow; the guest transfer is relay-only.
	if c := h.send(guest, transfer.TypeSignal, map[string]any{"id": id, "candidate": map[string]any{"candidate": "candidate:1 1 udp 2122260223 10.1.2.3 5000 typ host"}}); c != "" {
		t.Fatal(c)
	}
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("guest's host candidate was forwarded: %v", evs)
	}
	if c := h.send(guest, transfer.TypeSignal, map[string]any{"id": id, "candidate": map[string]any{"candidate": "candidate:4 1 udp 41885439 198.51.100.1 49170 typ relay raddr 0.0.0.0 rport 0"}}); c != "" {
		t.Fatal(c)
	}
	if got := types(to(h.take(), "s-mum-laptop")); !slices.Equal(got, []string{transfer.TypeSignal}) {
		t.Fatalf("relay candidate reached the sender as %v", got)
	}
	// Both finish: the transfer is forgotten, the guest's pass ends and
	// its connection is closed; only the member has history.
	h.send(guest, transfer.TypeResult, map[string]any{"id": id, "result": "done", "bytes": 5, "files": 1})
	h.send(mumLaptop, transfer.TypeResult, map[string]any{"id": id, "result": "done", "bytes": 5, "files": 1})
	if _, _, err := h.svc.Guest(tk.Token); !errors.Is(err, transfer.ErrBadTicket) {
		t.Fatalf("Guest(ticket) after the transfer = %v, want ErrBadTicket", err)
	}
	if !slices.Contains(h.disconnected, "guest:"+id) {
		t.Fatalf("disconnected %v, want the guest", h.disconnected)
	}
	if hist, _ := h.svc.History("u-mum"); len(hist) != 1 || hist[0].Peer != "guest" || hist[0].Result != "done" {
		t.Fatalf("mum's history = %+v", hist)
	}
	if hist, _ := h.svc.History("guest:" + id); len(hist) != 0 {
		t.Fatalf("a guest has history: %+v", hist)
	}
	if st := h.svc.Stats(); st.CodesIssued != 1 || st.PairFailures != 2 {
		t.Fatalf("stats = %+v, want 1 code and 2 pair failures", st)
	}
}

func TestGuestCodeExpiry(t *testing.T) {
	h := newHarness(t, true)
	// The clock jumps forward past the code's life: the code is dead, and
	// the sweep tells the sender.
	_, code, _ := guestOffer(t, h)
	h.advance(transfer.DefaultCodeTTL + time.Second)
	if _, err := h.svc.Pair(code, "192.0.2.1", ""); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("Pair(expired) = %v, want ErrBadCode", err)
	}
	h.svc.Sweep()
	g := to(h.take(), "s-mum-laptop")
	if len(g) != 1 || g[0].typ != transfer.TypeGone || g[0].data["reason"] != "expired" {
		t.Fatalf("sender got %v, want transfer.gone expired", g)
	}
	// Going back in time does not revive it.
	h.advance(-time.Hour)
	if _, err := h.svc.Pair(code, "192.0.2.1", ""); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("Pair(expired, clock back) = %v, want ErrBadCode", err)
	}
	// A code unused when the sweep runs after its TTL is dropped too.
	_, code, _ = guestOffer(t, h)
	h.advance(9 * time.Minute)
	h.svc.Sweep()
	if evs := h.take(); len(evs) != 0 {
		t.Fatalf("before the TTL: %v", evs)
	}
	h.advance(2 * time.Minute)
	h.svc.Sweep()
	if _, err := h.svc.Pair(code, "192.0.2.9", ""); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("Pair after the sweep = %v, want ErrBadCode", err)
	}

	// A configured TTL applies.
	h2 := newHarness(t, false, func(c *transfer.Config) { c.CodeTTL = 2 * time.Minute })
	_, code, exp := guestOffer(t, h2)
	if want := h2.clock().Add(2 * time.Minute); !exp.Equal(want) {
		t.Fatalf("code expires %v, want %v", exp, want)
	}
	h2.advance(2*time.Minute + time.Millisecond)
	if _, err := h2.svc.Pair(code, "192.0.2.1", ""); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("Pair after a 2-minute TTL = %v, want ErrBadCode", err)
	}
	if _, err := transfer.New(transfer.Config{Publish: func(hub.Event) {}, Online: func() []hub.Client { return nil }, CodeTTL: -time.Second}); err == nil {
		t.Fatal("New accepted a negative code TTL")
	}
}

func TestPairThrottledPerAddress(t *testing.T) {
	h := newHarness(t, false)
	_, code, _ := guestOffer(t, h)
	for i := range 6 {
		if _, err := h.svc.Pair("ZZZZZZZZZZ", "192.0.2.7", ""); !errors.Is(err, transfer.ErrBadCode) {
			t.Fatalf("wrong code %d = %v, want ErrBadCode", i+1, err)
		}
	}
	var te *transfer.ThrottledError
	if _, err := h.svc.Pair(code, "192.0.2.7", ""); !errors.As(err, &te) || te.RetryAfter <= 0 {
		t.Fatalf("right code while throttled = %v, want ThrottledError", err)
	}
	h.advance(2 * time.Second)
	if _, err := h.svc.Pair(code, "192.0.2.7", ""); err != nil {
		t.Fatalf("right code after the pause = %v", err)
	}
	// Another address was never slowed down; IPv6 neighbours share a /64.
	for range 6 {
		h.svc.Pair("ZZZZZZZZZZ", "2001:db8:1:2::10", "")
	}
	if _, err := h.svc.Pair("ZZZZZZZZZZ", "2001:db8:1:2::99", ""); !errors.As(err, &te) {
		t.Fatalf("same /64 = %v, want throttled", err)
	}
	if _, err := h.svc.Pair("ZZZZZZZZZZ", "192.0.2.8", ""); !errors.Is(err, transfer.ErrBadCode) {
		t.Fatalf("other address = %v, want plain ErrBadCode", err)
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"ABCDE-FGHJK":   "ABCDEFGHJK",
		"abcde fghjk":   "ABCDEFGHJK",
		"OIL23-45678":   "0112345678",
		"ABCDE-FGHJ":    "",
		"ABCDE-FGHJKM":  "",
		"ABCDU-FGHJK":   "", // U is not Crockford
		"ÄBCDE-FGHJK":   "",
		"":              "",
		"0123456789":    "0123456789",
		"01234-5678-9 ": "0123456789",
	} {
		if got := transfer.NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCodesAreRandom(t *testing.T) {
	h := newHarness(t, false)
	seen := map[string]bool{}
	for range 20 {
		_, code, _ := guestOffer(t, h)
		if seen[code] || !codeRE.MatchString(code) {
			t.Fatalf("code %q repeated or malformed", code)
		}
		seen[code] = true
		if len(seen) == transfer.MaxOpenPerSession-1 {
			break
		}
	}
}
