package voice

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// offerSDP builds an offer with the given media sections.
func offerSDP(media ...string) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	for _, m := range media {
		b.WriteString(m)
	}
	return b.String()
}

const (
	opusSend = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
	opusRecv = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n"
	opusBoth = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=rtpmap:111 OPUS/48000/2\r\n"
	opusGone = "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
	pcmu     = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:4\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
	vp8      = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:5\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n"
	data     = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:6\r\n"
)

var offerTests = []struct {
	name string
	sdp  string
	want error
}{
	{"microphone", offerSDP(opusSend), nil},
	{"microphone and slots", offerSDP(opusSend, opusRecv, opusRecv), nil},
	{"listen only", offerSDP(opusRecv), nil},
	{"sendrecv by default, codec name in any case", offerSDP(opusBoth), nil},
	{"stopped slot", offerSDP(opusSend, opusGone), nil},
	{"empty", "", ErrBadSDP},
	{"garbage", "hello", ErrBadSDP},
	{"truncated", offerSDP(opusSend)[:40], ErrBadSDP},
	{"no media", offerSDP(), ErrAudioOnly},
	{"only stopped audio", offerSDP(opusGone), ErrAudioOnly},
	{"video only", offerSDP(vp8), ErrAudioOnly},
	{"audio and video", offerSDP(opusSend, vp8), ErrAudioOnly},
	{"data channel", offerSDP(opusSend, data), ErrAudioOnly},
	{"PCMU only", offerSDP(pcmu), ErrAudioOnly},
	{"two microphones", offerSDP(opusSend, opusBoth), ErrBadSDP},
	{"too many sections", offerSDP(strings.Repeat(opusRecv, 4+extraMLines)), ErrBadSDP},
	{"too large", offerSDP(opusSend) + strings.Repeat("a=x\r\n", maxSDP/5), ErrBadSDP},
}

func TestCheckOffer(t *testing.T) {
	for _, tt := range offerTests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOffer(tt.sdp, 3)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("checkOffer(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

// FuzzCheckOffer: any text is accepted or refused with ErrBadSDP or
// ErrAudioOnly, never anything else, never a panic.
func FuzzCheckOffer(f *testing.F) {
	for _, tt := range offerTests {
		f.Add(tt.sdp)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkOffer(s, DefaultMaxParticipants)
		if err != nil && !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrAudioOnly) {
			t.Errorf("checkOffer(%q) = %v, want nil, ErrBadSDP or ErrAudioOnly", s, err)
		}
	})
}

func TestHistogram(t *testing.T) {
	tests := []struct {
		in      time.Duration
		atLeast time.Duration
		atMost  time.Duration
	}{
		{0, 0, 1024 * time.Nanosecond},
		{time.Microsecond, time.Microsecond, 1024 * time.Nanosecond},
		{1025 * time.Nanosecond, 1025 * time.Nanosecond, 1280 * time.Nanosecond},
		{10 * time.Microsecond, 10 * time.Microsecond, 10240 * time.Nanosecond},
		{100 * time.Microsecond, 100 * time.Microsecond, 114688 * time.Nanosecond},
		{2 * time.Millisecond, 2 * time.Millisecond, 2097152 * time.Nanosecond},
		{3 * time.Millisecond, 3 * time.Millisecond, 3145728 * time.Nanosecond},
		{time.Hour, histBounds[len(histBounds)-1], histBounds[len(histBounds)-1]},
	}
	for _, tt := range tests {
		var h histogram
		h.record(tt.in)
		got := h.snapshot().Quantile(0.5)
		if got < tt.atLeast || got > tt.atMost {
			t.Errorf("record(%v); Quantile(0.5) = %v, want %v-%v", tt.in, got, tt.atLeast, tt.atMost)
		}
	}
	var h histogram
	for i := 1; i <= 100; i++ {
		h.record(time.Duration(i) * 10 * time.Microsecond)
	}
	s := h.snapshot()
	if p50, p99 := s.Quantile(0.5), s.Quantile(0.99); p50 < 500*time.Microsecond || p50 > 600*time.Microsecond ||
		p99 < 990*time.Microsecond || p99 > 1150*time.Microsecond {
		t.Errorf("10 µs to 1 ms evenly: p50 %v, p99 %v; want about 500 µs and 1 ms", p50, p99)
	}
	if s.Count != 100 || s.Mean() != 505*time.Microsecond {
		t.Errorf("count %d, mean %v; want 100, 505µs", s.Count, s.Mean())
	}
	for i := 0; i < 100; i++ {
		h.record(5 * time.Second)
	}
	if d := h.snapshot().Sub(s); d.Count != 100 || d.Quantile(0.5) != histBounds[len(histBounds)-1] {
		t.Errorf("Sub: %d samples, p50 %v; want the 100 late ones above the last bound", d.Count, d.Quantile(0.5))
	}
	if (Histogram{}).Quantile(0.5) != 0 || (Histogram{}).Mean() != 0 {
		t.Error("an empty histogram has no quantiles")
	}
}

func TestCode(t *testing.T) {
	for _, c := range errorCodes {
		wrapped := errors.Join(errors.New("context"), c.err)
		if got := Code(wrapped); got != c.code {
			t.Errorf("Code(%v) = %q, want %q", wrapped, got, c.code)
		}
	}
	if got := Code(errors.New("other")); got != "error" {
		t.Errorf("Code(other) = %q, want error", got)
	}
}

func TestMaskText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"from 192.168.1.23:5000", "from 192.168.1.0/24:5000"},
		{"peer 2001:db8:1:2:3:4:5:6 failed", "peer 2001:db8:1::/48 failed"},
		{"loopback 127.0.0.1 stays", "loopback 127.0.0.1 stays"},
		{"no address here", "no address here"},
	}
	for _, tt := range tests {
		if got := maskText(tt.in); got != tt.want {
			t.Errorf("maskText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
