package voice

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

const (
	opusPayloadType = 111
	// maxSDP bounds a session description (the hub bounds messages too).
	maxSDP = 48 << 10
	// extraMLines are m-lines an offer may have beyond the room's slots
	// and the microphone (rejected video, a data channel).
	extraMLines = 8
)

var opusCapability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusClockRate, Channels: 2,
	SDPFmtpLine: "minptime=10;useinbandfec=1"}

// checkOffer checks a client's offer before pion sees it: it must parse,
// have Opus audio m-lines only (at least one), send at most one audio
// track and have no more m-lines than a call in a room of maxParticipants
// can use. Offers with video, data channels or other codecs are refused
// rather than answered with rejected m-lines: pion cannot make offers of
// its own on a connection with a rejected m-line, and this one must.
func checkOffer(raw string, maxParticipants int) error {
	if len(raw) > maxSDP {
		return fmt.Errorf("%w: offer is %d bytes, over %d", ErrBadSDP, len(raw), maxSDP)
	}
	if !strings.HasPrefix(raw, "v=0") {
		return fmt.Errorf("%w: not a session description", ErrBadSDP)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(raw); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if n := len(d.MediaDescriptions); n > maxParticipants+extraMLines {
		return fmt.Errorf("%w: %d media sections", ErrBadSDP, n)
	}
	opus, sending := 0, 0
	for _, m := range d.MediaDescriptions {
		switch {
		case m.MediaName.Media != "audio":
			return fmt.Errorf("%w: the offer has %s", ErrAudioOnly, m.MediaName.Media)
		case !hasOpus(m):
			return fmt.Errorf("%w: the offer has audio without Opus", ErrAudioOnly)
		case m.MediaName.Port.Value == 0:
			continue // stopped
		}
		opus++
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		if dir == "sendrecv" || dir == "sendonly" {
			sending++
		}
	}
	switch {
	case opus == 0:
		return fmt.Errorf("%w: the offer has no Opus audio", ErrAudioOnly)
	case sending > 1:
		return fmt.Errorf("%w: the offer sends %d audio tracks; a call sends one", ErrBadSDP, sending)
	}
	return nil
}

func hasOpus(m *sdp.MediaDescription) bool {
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		if _, codec, ok := strings.Cut(a.Value, " "); ok && strings.HasPrefix(strings.ToLower(codec), "opus/48000") {
			return true
		}
	}
	return false
}
