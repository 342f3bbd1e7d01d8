package voice_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
)

// pair is a talking and a listening participant whose call must not be
// disturbed by what others do.
type pair struct{ talker, listener *voicetest.Client }

func (h *harness) pair(ctx context.Context, room string) pair {
	h.t.Helper()
	p := pair{h.join(ctx, "talker", room, voicetest.JoinOptions{}), h.join(ctx, "listener", room, voicetest.JoinOptions{Muted: true})}
	p.talker.Talk(true)
	h.flowing(ctx, p.talker, 5, p.listener)
	return p
}

// undisturbed checks that the pair still talks and is alone in its room.
func (h *harness) undisturbed(ctx context.Context, p pair, room string) {
	h.t.Helper()
	h.flowing(ctx, p.talker, 5, p.listener)
	h.waitFor(ctx, "only the pair in "+room, func() bool {
		st, _ := h.state(room)
		return len(st.Participants) == 2
	})
}

// TestJoinRefused: joins that are not allowed or not usable are refused
// with the right error and a bye, and disturb nobody.
func TestJoinRefused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{MaxParticipants: 3})
	pr := h.pair(ctx, "lounge")
	h.deny("u-mallory", "lounge")
	third := h.join(ctx, "third", "lounge", voicetest.JoinOptions{Muted: true})

	tests := []struct {
		name   string
		who    string
		cfg    voicetest.Config
		opts   voicetest.JoinOptions
		want   error
		reason string
	}{
		{name: "not allowed", who: "mallory", want: voice.ErrForbidden, reason: "forbidden"},
		{name: "malformed SDP", who: "garbled", want: voice.ErrBadSDP, reason: "bad_sdp",
			opts: voicetest.JoinOptions{EditOffer: func(string) string { return "v=0\r\nthis is not a session description\r\n" }}},
		{name: "video only", who: "camera", cfg: voicetest.Config{Video: true}, want: voice.ErrAudioOnly, reason: "audio_only",
			opts: voicetest.JoinOptions{NoAudio: true, Video: true}},
		{name: "audio and video", who: "camera2", cfg: voicetest.Config{Video: true}, want: voice.ErrAudioOnly, reason: "audio_only",
			opts: voicetest.JoinOptions{Video: true}},
		{name: "no opus", who: "pcmu", want: voice.ErrAudioOnly, reason: "audio_only",
			opts: voicetest.JoinOptions{EditOffer: func(s string) string { return strings.ReplaceAll(s, "opus/48000/2", "PCMU/8000") }}},
		{name: "two microphones", who: "twomics", want: voice.ErrBadSDP, reason: "bad_sdp",
			opts: voicetest.JoinOptions{ExtraAudio: true}},
		{name: "no fingerprint", who: "nofp", want: voice.ErrBadSDP, reason: "bad_sdp",
			opts: voicetest.JoinOptions{EditOffer: func(s string) string { return dropLines(s, "a=fingerprint:") }}},
	}
	full := h.client("fourth", voicetest.Config{})
	if err := full.Join(ctx, "lounge", voicetest.JoinOptions{}); !errors.Is(err, voice.ErrRoomFull) {
		t.Fatalf("fourth joins a room of 3 with room for 3: %v, want ErrRoomFull", err)
	}
	h.waitFor(ctx, "a bye", func() bool { return len(full.Byes()) > 0 })
	if bye := full.Byes()[0]; bye.Reason != "room_full" {
		t.Errorf("bye = %+v, want reason room_full", bye)
	}
	if err := third.Leave(ctx); err != nil { // make room: only the reason under test refuses
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.client(tt.who, tt.cfg)
			err := c.Join(ctx, "lounge", tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Join = %v, want %v", err, tt.want)
			}
			if got := voice.Code(err); got != tt.reason {
				t.Errorf("Code(%v) = %q, want %q", err, got, tt.reason)
			}
			h.waitFor(ctx, "a bye", func() bool { return len(c.Byes()) > 0 })
			if bye := c.Byes()[0]; bye.Reason != tt.reason || bye.Message == "" {
				t.Errorf("bye = %+v, want reason %q and a message", bye, tt.reason)
			}
			h.undisturbed(ctx, pr, "lounge")
		})
	}
	if st := h.svc.Stats(); st.Refused != uint64(len(tests)+1) {
		t.Errorf("Stats().Refused = %d, want %d", st.Refused, len(tests)+1)
	}
}

func dropLines(s, prefix string) string {
	var keep []string
	for _, l := range strings.Split(s, "\r\n") {
		if !strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\r\n")
}

// TestBadMessages: malformed or out-of-place messages are refused with an
// error for that client only.
func TestBadMessages(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")
	stranger := h.client("stranger", voicetest.Config{})
	tests := []struct {
		name string
		c    *voicetest.Client
		typ  string
		data string
		want error
	}{
		{"unknown type", pr.listener, "voice.dance", `{}`, voice.ErrUnknownType},
		{"not JSON", pr.listener, voice.TypeMute, `{"muted":`, voice.ErrBadMessage},
		{"mute without value", pr.listener, voice.TypeMute, `{}`, voice.ErrBadMessage},
		{"mute wrong type", pr.listener, voice.TypeMute, `{"muted":"yes"}`, voice.ErrBadMessage},
		{"deafen without value", pr.listener, voice.TypeDeafen, `null`, voice.ErrBadMessage},
		{"floor bad action", pr.listener, voice.TypeFloor, `{"action":"grab"}`, voice.ErrBadMessage},
		{"mode without value", pr.listener, voice.TypeMode, `{}`, voice.ErrBadMessage},
		{"signal bad type", pr.listener, voice.TypeSignal, `{"type":"pranswer","sdp":"x"}`, voice.ErrBadMessage},
		{"answer without offer", pr.listener, voice.TypeSignal, `{"type":"answer","sdp":"v=0"}`, voice.ErrBadMessage},
		{"garbage offer", pr.listener, voice.TypeSignal, `{"type":"offer","sdp":"nonsense"}`, voice.ErrBadSDP},
		{"bad candidate", pr.listener, voice.TypeSignal, `{"type":"candidate","candidate":{"candidate":"candidate:garbage","sdpMid":"0"}}`, voice.ErrBadMessage},
		{"other room", pr.listener, voice.TypeMute, `{"room":"kitchen","muted":true}`, voice.ErrNotJoined},
		{"join without room", stranger, voice.TypeJoin, `{"sdp":"v=0"}`, voice.ErrBadMessage},
		{"join without offer", stranger, voice.TypeJoin, `{"room":"lounge"}`, voice.ErrBadMessage},
		{"mute before joining", stranger, voice.TypeMute, `{"muted":true}`, voice.ErrNotJoined},
		{"signal before joining", stranger, voice.TypeSignal, `{"type":"candidate"}`, voice.ErrNotJoined},
		{"leave before joining", stranger, voice.TypeLeave, ``, voice.ErrNotJoined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Send(ctx, tt.typ, json.RawMessage(tt.data))
			if !errors.Is(err, tt.want) {
				t.Errorf("Handle(%s %s) = %v, want %v", tt.typ, tt.data, err, tt.want)
			}
		})
	}
	// An offer that passes the checks but that pion refuses is refused;
	// that call goes on, or (when pion cannot go back to a stable state)
	// it ends: either way nobody else's call is touched.
	breaker := h.join(ctx, "breaker", "lounge", voicetest.JoinOptions{Muted: true})
	h.flowing(ctx, pr.talker, 1, breaker) // its slot is negotiated: no offer of the server's is pending
	offer, err := breaker.Offer()
	if err != nil {
		t.Fatal(err)
	}
	err = breaker.Send(ctx, voice.TypeSignal, voice.SignalMessage{Type: voice.SignalOffer, SDP: dropLines(offer, "a=ice-ufrag:")})
	if !errors.Is(err, voice.ErrBadSDP) {
		t.Errorf("offer without ICE credentials = %v, want ErrBadSDP", err)
	}
	if len(breaker.Byes()) == 0 {
		h.flowing(ctx, pr.talker, 5, breaker)
	}
	if err := breaker.Leave(ctx); err != nil && !errors.Is(err, voice.ErrNotJoined) {
		t.Fatal(err)
	}
	// A stale signal for an earlier call of the session is ignored.
	if err := pr.listener.Send(ctx, voice.TypeSignal, json.RawMessage(`{"participant":"old","type":"answer","sdp":"x"}`)); err != nil {
		t.Errorf("signal for an earlier call: %v, want it ignored", err)
	}
	h.undisturbed(ctx, pr, "lounge")
}

// TestRenegotiationFlood: offers beyond the rate limit are refused; the
// call goes on.
func TestRenegotiationFlood(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")
	offer, err := pr.listener.Offer()
	if err != nil {
		t.Fatal(err)
	}
	var ok, refused int
	for range 20 {
		err := pr.listener.Send(ctx, voice.TypeSignal, voice.SignalMessage{Type: voice.SignalOffer, SDP: offer})
		switch {
		case err == nil:
			ok++
		case errors.Is(err, voice.ErrTooFast):
			refused++
		default:
			t.Fatalf("offer: %v", err)
		}
	}
	if ok < 1 || ok > 6 || refused < 14 {
		t.Errorf("20 offers: %d answered, %d refused; want about 5 answered (the burst) and the rest refused", ok, refused)
	}
	// Candidates are bounded too.
	var candErr error
	for i := range 100 {
		cand := map[string]any{"type": "candidate", "candidate": map[string]any{
			"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 " + itoa(10000+i) + " typ host", "sdpMid": "0", "sdpMLineIndex": 0}}
		if candErr = pr.listener.Send(ctx, voice.TypeSignal, cand); candErr != nil {
			break
		}
	}
	if !errors.Is(candErr, voice.ErrBadMessage) {
		t.Errorf("100 candidates: err = %v, want ErrBadMessage (too many)", candErr)
	}
	h.undisturbed(ctx, pr, "lounge")
	if err := pr.listener.Restart(ctx); !errors.Is(err, voice.ErrTooFast) {
		t.Errorf("ICE restart right after the flood = %v, want ErrTooFast", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestUnknownSSRC: RTP from an SSRC that was never negotiated is not
// forwarded and does not disturb the call.
func TestUnknownSSRC(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := newHarness(t, voice.Config{})
	pr := h.pair(ctx, "lounge")
	pr.talker.Talk(false)
	h.silent(pr.talker, "talker stopped", pr.listener)
	before := pr.listener.Total()
	pr.talker.SendForeign(200)
	h.silent(pr.talker, "foreign SSRC", pr.listener)
	if n := pr.listener.Total(); n != before {
		t.Errorf("listener received %d packets of the foreign SSRC, want 0", n-before)
	}
	pr.talker.Talk(true)
	h.undisturbed(ctx, pr, "lounge")
}
