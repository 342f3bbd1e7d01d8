package voice_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
)

// settle waits until the goroutine count is at most want, and fails with
// what was started since before (by creator) if it does not get there.
func settle(ctx context.Context, t *testing.T, want int, before map[string]int, what string) {
	t.Helper()
	if err := voicetest.WaitFor(ctx, func() bool { return runtime.NumGoroutine() <= want }); err != nil {
		var diff []string
		for k, n := range goroutines() {
			if n > before[k] {
				diff = append(diff, fmt.Sprintf("%+d %s", n-before[k], k))
			}
		}
		t.Fatalf("%s: %d goroutines, want at most %d; more than before:\n%s", what, runtime.NumGoroutine(), want, strings.Join(diff, "\n"))
	}
}

// goroutines counts the running goroutines by their top function and
// creator.
func goroutines() map[string]int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		if len(lines) < 2 {
			continue
		}
		key := lines[1]
		for _, l := range lines {
			if strings.HasPrefix(l, "created by ") {
				key += " <- " + strings.TrimPrefix(l, "created by ")
			}
		}
		out[key]++
	}
	return out
}

// TestLeaveAndVanish: a participant who leaves, who vanishes (its realtime
// connection ends: Disconnected), or whose connection closes, is gone from
// the room, from every listener's slots and from the Service's goroutines,
// and the others keep talking.
func TestLeaveAndVanish(t *testing.T) {
	// Not parallel: it counts goroutines (parallel tests wait until the
	// sequential ones are done).
	checkGoroutines(t)
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")

	// A first visitor makes the pair's spare slots exist, so that later
	// visitors add no goroutines that outlive them.
	warm := h.join(ctx, "warmup", "lounge", voicetest.JoinOptions{})
	warm.Talk(true)
	h.flowing(ctx, warm, 5, pr.listener)
	if err := warm.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	warm.Close()
	h.hub.Disconnect(who("warmup").SessionID)
	h.waitFor(ctx, "warmup gone", func() bool { st, _ := h.state("lounge"); return len(st.Participants) == 2 })

	for _, how := range []string{"leave", "vanish", "close"} {
		t.Run(how, func(t *testing.T) {
			base, baseStacks := runtime.NumGoroutine(), goroutines()
			name := "visitor-" + how
			v := h.join(ctx, name, "lounge", voicetest.JoinOptions{})
			v.Talk(true)
			h.flowing(ctx, v, 5, pr.listener)
			h.flowing(ctx, pr.talker, 5, v)
			id := v.ID()
			switch how {
			case "leave":
				if err := v.Leave(ctx); err != nil {
					t.Fatal(err)
				}
			case "vanish":
				h.svc.Disconnected(who(name))
			case "close":
				v.Close() // DTLS close, no voice.leave
			}
			h.waitFor(ctx, "visitor out of the room", func() bool {
				st, _ := h.state("lounge")
				return len(st.Participants) == 2 && find(st, id) == nil
			})
			h.waitFor(ctx, "visitor out of the listener's slots", func() bool {
				return !slices.Contains(mapValues(pr.listener.Tracks()), id)
			})
			v.Close()
			h.hub.Disconnect(who(name).SessionID)
			settle(ctx, t, base, baseStacks, "after the visitor "+how)
			h.undisturbed(ctx, pr, "lounge")
			if st := h.svc.Stats(); st.Participants != 2 || st.Rooms != 1 {
				t.Errorf("Stats() = %d participants in %d rooms, want 2 in 1", st.Participants, st.Rooms)
			}
		})
	}
	// Everyone leaves: the room closes.
	for _, c := range []*voicetest.Client{pr.talker, pr.listener} {
		if err := c.Leave(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if rooms := h.svc.Rooms(); len(rooms) != 0 {
		t.Errorf("Rooms() = %+v, want none", rooms)
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestConnectTimeout: a participant whose connection never comes up is
// removed (bye connect_timeout).
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{ConnectTimeout: 300 * time.Millisecond})
	offer, err := voicetest.Offer() // from a connection that is gone
	if err != nil {
		t.Fatal(err)
	}
	c := h.client("ghost", voicetest.Config{})
	if err := c.Send(ctx, voice.TypeJoin, voice.JoinMessage{Room: "lounge", SDP: offer}); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "the ghost removed", func() bool { return len(h.svc.Rooms()) == 0 })
	h.waitFor(ctx, "a bye", func() bool { return len(c.Byes()) > 0 })
	if bye := c.Byes()[0]; bye.Reason != "connect_timeout" {
		t.Errorf("bye = %+v, want connect_timeout", bye)
	}
}

// TestNegotiationTimeout: a client that does not answer the server's offer
// is removed (bye negotiation_timeout); the others go on.
func TestNegotiationTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{NegotiationTimeout: 300 * time.Millisecond})
	pr := h.pair(ctx, "lounge")
	mute := h.client("mute", voicetest.Config{IgnoreOffers: true})
	if err := mute.Join(ctx, "lounge", voicetest.JoinOptions{Muted: true}); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "a bye", func() bool { return len(mute.Byes()) > 0 })
	if bye := mute.Byes()[0]; bye.Reason != "negotiation_timeout" {
		t.Errorf("bye = %+v, want negotiation_timeout", bye)
	}
	h.undisturbed(ctx, pr, "lounge")
}

// TestGlare: a client offer while the server's offer is unanswered is
// ignored (the client is the polite peer); answering the server's offer
// then completes the negotiation.
func TestGlare(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")
	offer, err := pr.listener.Offer()
	if err != nil {
		t.Fatal(err)
	}
	late := h.client("late", voicetest.Config{IgnoreOffers: true})
	if err := late.Join(ctx, "lounge", voicetest.JoinOptions{Muted: true}); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "the server's offer to late", func() bool { return countOffers(h, who("late").SessionID) == 1 })
	if err := late.Send(ctx, voice.TypeSignal, voice.SignalMessage{Type: voice.SignalOffer, SDP: offer}); err != nil {
		t.Errorf("client offer during the server's: %v, want it ignored", err)
	}
	if n := len(late.Answers()); n != 1 {
		t.Errorf("late got %d answers, want 1 (its colliding offer is not answered)", n)
	}
	if err := late.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	h.undisturbed(ctx, pr, "lounge")
}

// TestRejoin: a session that joins again (after a network blip, or to
// another room) replaces its call.
func TestRejoin(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")
	first := h.join(ctx, "roamer", "lounge", voicetest.JoinOptions{Muted: true})
	h.hub.Disconnect(who("roamer").SessionID)
	second := h.join(ctx, "roamer", "lounge", voicetest.JoinOptions{Muted: true})
	h.flowing(ctx, pr.talker, 10, second)
	st, _ := h.state("lounge")
	if len(st.Participants) != 3 || find(st, first.ID()) != nil || find(st, second.ID()) == nil {
		t.Errorf("state after rejoining: %+v, want the second call only", st)
	}
	h.hub.Disconnect(who("roamer").SessionID)
	third := h.join(ctx, "roamer", "kitchen", voicetest.JoinOptions{Muted: true})
	if st, _ := h.state("lounge"); len(st.Participants) != 2 {
		t.Errorf("lounge after moving to the kitchen: %+v, want the pair only", st)
	}
	if st, _ := h.state("kitchen"); len(st.Participants) != 1 || st.Participants[0].ID != third.ID() {
		t.Errorf("kitchen: %+v, want the roamer", st)
	}
}

// TestSyncAndRecheck: voice.sync reports the rooms a user may join;
// Recheck removes who may no longer be in a room.
func TestSyncAndRecheck(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{Muted: true})
	h.join(ctx, "bob", "attic", voicetest.JoinOptions{Muted: true})
	h.deny("u-carol", "attic")
	carol := h.client("carol", voicetest.Config{})
	if err := carol.Send(ctx, voice.TypeSync, nil); err != nil {
		t.Fatal(err)
	}
	var synced []string
	for _, ev := range h.hub.Events() {
		if ev.Type == voice.TypeState && slices.Equal(ev.Sessions, []string{who("carol").SessionID}) {
			synced = append(synced, ev.Data.(voice.RoomState).Room)
		}
	}
	if !slices.Equal(synced, []string{"lounge"}) {
		t.Errorf("voice.sync sent carol the rooms %v, want [lounge] (not the attic)", synced)
	}
	h.deny("u-alice", "lounge")
	h.svc.Recheck("")
	h.waitFor(ctx, "alice's bye", func() bool { return len(alice.Byes()) > 0 })
	if bye := alice.Byes()[0]; bye.Reason != "forbidden" {
		t.Errorf("bye = %+v, want forbidden", bye)
	}
	if rooms := h.svc.Rooms(); len(rooms) != 1 || rooms[0].Room != "attic" {
		t.Errorf("Rooms() = %+v, want the attic only", rooms)
	}
}

// TestClose: Close ends every call with a bye, refuses what comes after
// and may be called twice.
func TestClose(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")
	if err := h.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range []*voicetest.Client{pr.talker, pr.listener} {
		h.waitFor(ctx, "a bye", func() bool { return len(c.Byes()) > 0 })
		if bye := c.Byes()[0]; bye.Reason != "shutting_down" {
			t.Errorf("bye = %+v, want shutting_down", bye)
		}
	}
	if err := pr.listener.Mute(ctx, true); !errors.Is(err, voice.ErrClosed) {
		t.Errorf("Handle after Close = %v, want ErrClosed", err)
	}
}

// TestConfig: New refuses an unusable Config.
func TestConfig(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	ok := func(c voice.Config) voice.Config {
		c.CanJoin = func(string, string) bool { return true }
		c.Publish = func(hub.Event) {}
		return c
	}
	tests := []struct {
		name string
		cfg  voice.Config
	}{
		{"no socket", ok(voice.Config{})},
		{"nil extra socket", ok(voice.Config{UDP: udp, MoreUDP: []net.PacketConn{nil}})},
		{"no CanJoin", voice.Config{UDP: udp, Publish: func(hub.Event) {}}},
		{"no Publish", voice.Config{UDP: udp, CanJoin: func(string, string) bool { return true }}},
		{"negative size", ok(voice.Config{UDP: udp, MaxParticipants: -1})},
		{"negative timeout", ok(voice.Config{UDP: udp, FloorIdle: -time.Second})},
		{"level out of range", ok(voice.Config{UDP: udp, SpeakingLevel: 200})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := voice.New(tt.cfg); err == nil {
				s.Close()
				t.Errorf("New(%s) succeeded, want an error", tt.name)
			}
		})
	}
}
