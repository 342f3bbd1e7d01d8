package voice

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Limits on what one participant may send: Opus at 20 ms is 50 packets a
// second and at most 510 kbit/s; anything beyond these is dropped.
const (
	maxPacketRate  = 200    // packets per second, sustained
	maxPacketBurst = 100    // packets
	maxByteRate    = 80_000 // payload bytes per second, sustained
	maxByteBurst   = 40_000
	readBufferSize = 1500
	opusClockRate  = 48000
)

// forward reads the participant's microphone track and writes each packet
// to every listener whose slot carries it: without decoding, with the
// sequence numbers of packets not forwarded (muted) taken out, so that
// listeners see no loss where there was silence.
func (p *participant) forward(t *webrtc.TrackRemote, levelID uint8) {
	s := p.s
	pt := uint8(t.PayloadType())
	buf := make([]byte, readBufferSize)
	var (
		h       rtp.Header
		skipped uint16 // packets not forwarded so far
		lastSeq uint16
		started bool
	)
	packets := newBucket(maxPacketRate, maxPacketBurst)
	bytes := newBucket(maxByteRate/100, maxByteBurst/100) // in units of 100 bytes
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		t0 := time.Now()
		hl, err := h.Unmarshal(buf[:n])
		if err != nil || h.PayloadType != pt || p.mic.Load() != t {
			s.counts.packetsInvalid.Add(1)
			continue
		}
		end := n
		if h.Padding {
			pad := int(buf[n-1])
			if pad == 0 || hl+pad > n {
				s.counts.packetsInvalid.Add(1)
				continue
			}
			end -= pad
		}
		payload := buf[hl:end]
		if !packets.allow(t0) || !bytes.allowN(t0, float64(len(payload))/100) {
			s.counts.packetsInvalid.Add(1)
			continue
		}
		s.counts.packetsIn.Add(1)
		s.counts.bytesIn.Add(uint64(len(payload)))
		if !started {
			started, lastSeq = true, h.SequenceNumber
		} else if d := h.SequenceNumber - lastSeq; d != 0 && d < 0x8000 {
			if d > 1 {
				s.counts.packetsLostIn.Add(uint64(d - 1))
			}
			lastSeq = h.SequenceNumber
		}
		level := -1
		if levelID != 0 {
			if e := h.GetExtension(levelID); len(e) > 0 {
				level = int(e[0] & 0x7f)
			}
		}
		if !p.open.Load() {
			skipped++
			s.counts.packetsMuted.Add(1)
			continue
		}
		if level >= 0 && level <= s.cfg.SpeakingLevel {
			p.loud.Add(1)
		}
		h.SequenceNumber -= skipped
		sent := 0
		for _, d := range *p.outs.Load() {
			if d.write(p, &h, payload, level, t0) {
				sent++
				s.counts.latency.record(time.Since(t0))
			}
		}
		if sent > 0 {
			s.counts.packetsFwd.Add(uint64(sent))
			s.counts.bytesFwd.Add(uint64(sent * len(payload)))
		}
	}
}

// drain reads and drops a track that is not forwarded (not Opus audio),
// so that it costs no buffers.
func (p *participant) drain(t *webrtc.TrackRemote) {
	buf := make([]byte, readBufferSize)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
		p.s.counts.packetsInvalid.Add(1)
	}
}

// drainRTCP reads a receiver's RTCP (the sender reports of the client's
// microphone) so that pion's interceptors see it; nothing else needs it.
func drainRTCP(r *webrtc.RTPReceiver) {
	buf := make([]byte, readBufferSize)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// allowN takes n tokens.
func (b *bucket) allowN(now time.Time, n float64) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// downTrack is one receive slot's outgoing track (a pion TrackLocal):
// it carries one talker at a time with continuous sequence numbers and
// timestamps across talkers, pauses and deafness.
type downTrack struct {
	listener *participant
	id       string
	ssrc     uint32 // set before the sender starts

	mu       sync.Mutex
	bind     *binding
	src      *participant
	started  bool
	switched bool // the source changed: rebase sequence and timestamp
	gap      bool // packets were skipped: rebase the sequence
	seqOff   uint16
	tsOff    uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   time.Time
	hdr      rtp.Header
	level    [1]byte
	lost     uint32 // cumulative loss in the listener's last report
}

type binding struct {
	w       webrtc.TrackLocalWriter
	ssrc    uint32
	pt      uint8
	levelID uint8
}

func newDownTrack(listener *participant, id string) *downTrack {
	return &downTrack{listener: listener, id: id}
}

// Bind is called by pion when the slot is negotiated.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) {
			continue
		}
		b := &binding{w: ctx.WriteStream(), ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType)}
		for _, e := range ctx.HeaderExtensions() {
			if e.URI == sdp.AudioLevelURI {
				b.levelID = uint8(e.ID)
			}
		}
		d.mu.Lock()
		d.bind = b
		d.mu.Unlock()
		return c, nil
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind is called by pion when the slot stops.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.bind = nil
	d.mu.Unlock()
	return nil
}

func (d *downTrack) ID() string                { return d.id }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) StreamID() string          { return d.id }
func (d *downTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// setSource switches the slot to another talker (nil: none).
func (d *downTrack) setSource(p *participant) {
	d.mu.Lock()
	if d.src != p {
		d.src, d.switched = p, true
	}
	d.mu.Unlock()
}

// write sends one packet of src to the listener, rewriting SSRC, payload
// type, sequence number, timestamp and the audio level extension for this
// slot. It reports whether the packet went out.
func (d *downTrack) write(src *participant, in *rtp.Header, payload []byte, level int, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.bind
	if b == nil || d.src != src {
		return false
	}
	if d.listener.deaf.Load() {
		d.gap = true
		return false
	}
	marker := in.Marker
	switch {
	case !d.started:
		d.started, d.seqOff, d.tsOff = true, 0, 0
		marker = true
	case d.switched:
		ticks := uint32(max(now.Sub(d.lastAt), 20*time.Millisecond).Seconds() * opusClockRate)
		d.seqOff = d.lastSeq + 1 - in.SequenceNumber
		d.tsOff = d.lastTS + ticks - in.Timestamp
		marker = true
	case d.gap:
		d.seqOff = d.lastSeq + 1 - in.SequenceNumber
		marker = true
	}
	d.switched, d.gap = false, false
	seq, ts := in.SequenceNumber+d.seqOff, in.Timestamp+d.tsOff
	if diff := seq - d.lastSeq; diff != 0 && diff < 0x8000 || d.lastAt.IsZero() {
		d.lastSeq, d.lastTS, d.lastAt = seq, ts, now
	}
	h := &d.hdr
	h.Version, h.Padding, h.Marker = 2, false, marker
	h.PayloadType, h.SequenceNumber, h.Timestamp, h.SSRC = b.pt, seq, ts, b.ssrc
	h.CSRC = h.CSRC[:0]
	h.Extension, h.Extensions = false, h.Extensions[:0]
	if b.levelID != 0 && level >= 0 {
		d.level[0] = byte(level)
		_ = h.SetExtension(b.levelID, d.level[:])
	}
	_, err := b.w.WriteRTP(h, payload)
	return err == nil
}

// readRTCP reads the listener's RTCP about this slot until the sender
// stops, counting the losses its receiver reports show.
func (d *downTrack) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, readBufferSize)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pk := range pkts {
			var reports []rtcp.ReceptionReport
			switch r := pk.(type) {
			case *rtcp.ReceiverReport:
				reports = r.Reports
			case *rtcp.SenderReport:
				reports = r.Reports
			}
			for _, rep := range reports {
				if rep.SSRC != d.ssrc {
					continue
				}
				d.mu.Lock()
				if rep.TotalLost > d.lost {
					d.listener.s.counts.packetsLostOut.Add(uint64(rep.TotalLost - d.lost))
				}
				d.lost = rep.TotalLost
				d.mu.Unlock()
			}
		}
	}
}
