package voice_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
)

// received returns what c got from from.
func received(c *voicetest.Client, from *voicetest.Client) uint64 {
	n, _ := c.Received(from.ID())
	return n
}

// flowing waits until each of to has received n more packets from from.
func (h *harness) flowing(ctx context.Context, from *voicetest.Client, n uint64, to ...*voicetest.Client) {
	h.t.Helper()
	start := make([]uint64, len(to))
	for i, c := range to {
		start[i] = received(c, from)
	}
	h.waitFor(ctx, "audio flowing", func() bool {
		for i, c := range to {
			if received(c, from) < start[i]+n {
				return false
			}
		}
		return true
	})
}

// silent checks that none of to receives anything from from for a while
// (after letting packets in flight arrive).
func (h *harness) silent(from *voicetest.Client, what string, to ...*voicetest.Client) {
	h.t.Helper()
	time.Sleep(60 * time.Millisecond)
	before := make([]uint64, len(to))
	for i, c := range to {
		before[i] = received(c, from)
	}
	time.Sleep(200 * time.Millisecond)
	for i, c := range to {
		if after := received(c, from); after != before[i] {
			h.t.Errorf("%s: received %d packets, want none", what, after-before[i])
		}
	}
}

// TestForward: one client talks, two listen (push-to-talk not pressed:
// muted); both receive its audio in sequence on one slot, the talker
// receives nothing of its own.
func TestForward(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{})
	bob := h.join(ctx, "bob", "lounge", voicetest.JoinOptions{Muted: true})
	carol := h.join(ctx, "carol", "lounge", voicetest.JoinOptions{Muted: true})
	alice.Talk(true)
	h.flowing(ctx, alice, 10, bob, carol)
	if n := alice.Total(); n != 0 {
		t.Errorf("alice received %d packets, want 0 (her own audio is not sent back)", n)
	}
	for name, c := range map[string]*voicetest.Client{"bob": bob, "carol": carol} {
		if g := c.Jumps(); g != 0 {
			t.Errorf("%s saw %d jumps in sequence numbers, want 0", name, g)
		}
		if tr := c.Tracks(); len(tr) != 1 {
			t.Errorf("%s's tracks = %v, want one slot with alice", name, tr)
		}
	}
	st := h.svc.Stats()
	if st.Rooms != 1 || st.Participants != 3 || st.Connected != 3 || st.Joins != 3 {
		t.Errorf("Stats() = %+v, want 1 room, 3 participants connected, 3 joins", st)
	}
	if st.PacketsIn == 0 || st.PacketsForwarded < 2*10 || st.BytesForwarded != st.PacketsForwarded*voicetest.PayloadSize {
		t.Errorf("Stats() packets in %d, forwarded %d (%d bytes): want forwarded to both", st.PacketsIn, st.PacketsForwarded, st.BytesForwarded)
	}
	if st.Latency.Count != st.PacketsForwarded || st.Latency.Quantile(0.5) <= 0 {
		t.Errorf("latency histogram: %d samples, p50 %v; want one per forwarded packet", st.Latency.Count, st.Latency.Quantile(0.5))
	}
}

// TestMute: push-to-talk released (voice.mute true) stops forwarding while
// the client keeps sending; pressed again, audio continues with no
// sequence gap.
func TestMute(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{Muted: true})
	bob := h.join(ctx, "bob", "lounge", voicetest.JoinOptions{})
	alice.Talk(true)
	h.silent(alice, "alice joined muted", bob)
	if err := alice.Mute(ctx, false); err != nil {
		t.Fatal(err)
	}
	h.flowing(ctx, alice, 10, bob)
	if err := alice.Mute(ctx, true); err != nil {
		t.Fatal(err)
	}
	h.silent(alice, "alice muted", bob)
	if st := h.svc.Stats(); st.PacketsMuted == 0 {
		t.Errorf("Stats().PacketsMuted = 0, want the muted packets counted")
	}
	st, _ := h.state("lounge")
	if p := find(st, alice.ID()); p == nil || !p.Muted {
		t.Errorf("room state %+v: want alice muted", st)
	}
	if err := alice.Mute(ctx, false); err != nil {
		t.Fatal(err)
	}
	h.flowing(ctx, alice, 10, bob)
	if g := bob.Jumps(); g != 0 {
		t.Errorf("bob saw %d jumps in sequence numbers across mute, want 0 (muted packets are taken out)", g)
	}
}

// TestDeafen: a deafened participant gets nothing, others still do; it
// also does not talk while deafened.
func TestDeafen(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{})
	bob := h.join(ctx, "bob", "lounge", voicetest.JoinOptions{})
	carol := h.join(ctx, "carol", "lounge", voicetest.JoinOptions{})
	alice.Talk(true)
	bob.Talk(true)
	h.flowing(ctx, alice, 5, bob)
	h.flowing(ctx, bob, 5, alice)
	if err := bob.Deafen(ctx, true); err != nil {
		t.Fatal(err)
	}
	h.silent(alice, "bob deafened", bob)
	h.silent(bob, "bob deafened (talking)", alice)
	h.flowing(ctx, alice, 5, carol)
	if err := bob.Deafen(ctx, false); err != nil {
		t.Fatal(err)
	}
	h.flowing(ctx, alice, 5, bob)
	h.flowing(ctx, bob, 5, alice)
}

// TestOneTalker: in one-talker mode only the floor holder is forwarded;
// the floor is granted by the server, refused while held, released on
// request, on leaving and when its holder is silent too long.
func TestOneTalker(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{FloorIdle: 400 * time.Millisecond})
	alice := h.join(ctx, "alice", "intercom", voicetest.JoinOptions{})
	bob := h.join(ctx, "bob", "intercom", voicetest.JoinOptions{})
	carol := h.join(ctx, "carol", "intercom", voicetest.JoinOptions{})
	alice.Talk(true)
	bob.Talk(true)
	h.flowing(ctx, bob, 5, carol)
	if err := carol.OneTalker(ctx, true); err != nil {
		t.Fatal(err)
	}
	h.silent(alice, "nobody has the floor (alice)", carol, bob)
	h.silent(bob, "nobody has the floor (bob)", carol, alice)

	if err := alice.Floor(ctx, "request"); err != nil {
		t.Fatalf("alice requests the floor: %v", err)
	}
	if err := bob.Floor(ctx, "request"); !errors.Is(err, voice.ErrFloorTaken) {
		t.Errorf("bob requests a held floor: err = %v, want ErrFloorTaken", err)
	}
	h.flowing(ctx, alice, 10, carol, bob)
	h.silent(bob, "bob without the floor", carol)
	if st, _ := h.state("intercom"); !st.OneTalker || st.Floor != alice.ID() {
		t.Errorf("state %+v: want one-talker with alice's floor", st)
	}

	if err := alice.Floor(ctx, "release"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Floor(ctx, "request"); err != nil {
		t.Fatalf("bob requests a released floor: %v", err)
	}
	h.flowing(ctx, bob, 10, carol)
	h.silent(alice, "alice after releasing", carol)

	// Leaving releases the floor.
	if err := bob.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "floor free after bob left", func() bool { st, _ := h.state("intercom"); return st.Floor == "" })

	// Silence releases it too.
	if err := alice.Floor(ctx, "request"); err != nil {
		t.Fatal(err)
	}
	alice.SetLevel(voicetest.QuietLevel)
	h.waitFor(ctx, "floor released after silence", func() bool { st, _ := h.state("intercom"); return st.Floor == "" })
	h.silent(alice, "alice after the floor timed out", carol)
}

// TestSpeaking: loud packets light the speaking indicator in the room
// state, silence turns it off, and so does muting.
func TestSpeaking(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{})
	bob := h.join(ctx, "bob", "lounge", voicetest.JoinOptions{})
	speaking := func(c *voicetest.Client) func() bool {
		return func() bool {
			st, _ := bob.State("lounge") // as bob's UI sees it
			p := find(st, c.ID())
			return p != nil && p.Speaking
		}
	}
	not := func(f func() bool) func() bool { return func() bool { return !f() } }
	alice.Talk(true)
	h.waitFor(ctx, "alice speaking", speaking(alice))
	alice.SetLevel(voicetest.QuietLevel)
	h.waitFor(ctx, "alice quiet", not(speaking(alice)))
	alice.SetLevel(voicetest.LoudLevel)
	h.waitFor(ctx, "alice speaking again", speaking(alice))
	if err := alice.Mute(ctx, true); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "alice muted, not speaking", not(speaking(alice)))
}

// TestSlots: a listener gets a slot per talker (renegotiating as talkers
// outnumber its slots) and slots are reused when talkers change, without
// renegotiating.
func TestSlots(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	listener := h.join(ctx, "listener", "lounge", voicetest.JoinOptions{})
	var talkers []*voicetest.Client
	for _, name := range []string{"a", "b", "c", "d"} {
		c := h.join(ctx, name, "lounge", voicetest.JoinOptions{})
		c.Talk(true)
		talkers = append(talkers, c)
	}
	for _, c := range talkers {
		h.flowing(ctx, c, 5, listener)
	}
	if tr := listener.Tracks(); len(tr) != 4 {
		t.Errorf("listener's tracks = %v, want 4", tr)
	}
	// a leaves, e joins and talks: e takes a's slot.
	if err := talkers[0].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	offers := countOffers(h, who("listener").SessionID)
	e := h.join(ctx, "e", "lounge", voicetest.JoinOptions{})
	e.Talk(true)
	h.flowing(ctx, e, 5, listener)
	if n := countOffers(h, who("listener").SessionID); n != offers {
		t.Errorf("the listener got %d more offers, want none (a free slot is reused)", n-offers)
	}
	if g := listener.Jumps(); g != 0 {
		t.Errorf("listener saw %d jumps in sequence numbers, want 0 (slots continue across talkers)", g)
	}
}

func countOffers(h *harness, session string) int {
	n := 0
	for _, ev := range h.hub.Events() {
		if sig, ok := ev.Data.(voice.Signal); ok && ev.Type == voice.TypeSignal && len(ev.Sessions) == 1 &&
			ev.Sessions[0] == session && sig.Type == voice.SignalOffer {
			n++
		}
	}
	return n
}

func find(st voice.RoomState, id string) *voice.ParticipantState {
	for i := range st.Participants {
		if st.Participants[i].ID == id {
			return &st.Participants[i]
		}
	}
	return nil
}

// TestListenOnly: a client without a microphone hears others.
func TestListenOnly(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{})
	bob := h.join(ctx, "bob", "lounge", voicetest.JoinOptions{ListenOnly: true})
	alice.Talk(true)
	h.flowing(ctx, alice, 10, bob)
}

// TestTCP: a client whose UDP is blocked connects over ICE-TCP.
func TestTCP(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarnessTCP(t)
	alice := h.join(ctx, "alice", "lounge", voicetest.JoinOptions{})
	bob := h.client("bob", voicetest.Config{TCP: true})
	if err := bob.Join(ctx, "lounge", voicetest.JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitFor(ctx, "bob connected over TCP", bob.Connected)
	alice.Talk(true)
	h.flowing(ctx, alice, 10, bob)
}
