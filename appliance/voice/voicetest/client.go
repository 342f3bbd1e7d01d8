// Package voicetest has a pion WebRTC voice client that speaks the voice
// package's realtime protocol and sends synthetic Opus, and an in-process
// stand-in for the realtime hub, for tests and load generation on
// loopback.
package voicetest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Synthetic Opus: 20 ms frames (50 packets a second) of PayloadSize
// bytes, the first a TOC byte, then the send time (Unix nanoseconds), so a
// receiver in the same process can measure the end-to-end latency.
const (
	PacketInterval = 20 * time.Millisecond
	PayloadSize    = 80
	// LoudLevel and QuietLevel are RFC 6464 levels (-dBov) the synthetic
	// microphone reports.
	LoudLevel  = 20
	QuietLevel = 120
)

// Config configures a Client.
type Config struct {
	// Send delivers a client message to the service (in-process: its
	// Handle, with this client's hub.Client). Required.
	Send func(ctx context.Context, typ string, data json.RawMessage) error
	// TCP makes the client use ICE over TCP only (active candidates).
	TCP bool
	// ICEServers are STUN/TURN servers for the client's side; RelayOnly
	// makes it use TURN relay candidates only.
	ICEServers []webrtc.ICEServer
	RelayOnly  bool
	// RecordLatency keeps every received packet's end-to-end latency.
	RecordLatency bool
	// Video lets the client offer video (VP8), which the service rejects.
	Video bool
	// IgnoreOffers makes the client never answer the service's offers
	// (a broken client).
	IgnoreOffers bool
	// Logger receives the client's logs. nil: discard.
	Logger *slog.Logger
}

// JoinOptions shape a join.
type JoinOptions struct {
	Muted, Deafened bool
	// ListenOnly offers a recvonly microphone m-line (no microphone).
	ListenOnly bool
	// NoAudio offers no audio m-line at all; Video adds a video one
	// (Config.Video); ExtraAudio a second sending audio one.
	NoAudio, Video, ExtraAudio bool
	// EditOffer, when set, rewrites the offer SDP before it is sent.
	EditOffer func(sdp string) string
}

// Client is one participant's device: a PeerConnection to the service, a
// synthetic microphone, and counters of what it received from whom. Its
// methods are safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger
	pc  *webrtc.PeerConnection
	mic *synthTrack

	queue    chan event
	done     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	talking  atomic.Bool
	talkOnce sync.Once
	level    atomic.Uint32
	received atomic.Uint64 // packets received in all

	mu          sync.Mutex
	room        string
	participant string
	answered    chan struct{}
	tracks      map[string]string // mid → participant
	states      map[string]voice.RoomState
	from        map[string]uint64 // packets by participant
	gaps        uint64            // sequence discontinuities within a slot
	jumps       uint64            // of which by more than maxLoss packets
	byes        []voice.Signal
	errs        []error
	latencies   []time.Duration
	answers     []string // SDP answers the service sent
	offers      int      // service offers answered
}

type event struct {
	typ  string
	data json.RawMessage
}

// New builds a Client. Nothing is sent until Join.
func New(cfg Config) (*Client, error) {
	if cfg.Send == nil {
		return nil, errors.New("voicetest: Send is required")
	}
	c := &Client{cfg: cfg, log: cfg.Logger, queue: make(chan event, 4096), done: make(chan struct{}),
		tracks: map[string]string{}, states: map[string]voice.RoomState{}, from: map[string]uint64{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.level.Store(LoudLevel)
	api, err := newAPI(cfg.TCP, cfg.Video)
	if err != nil {
		return nil, err
	}
	pcfg := webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle, ICEServers: cfg.ICEServers}
	if cfg.RelayOnly {
		pcfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcfg)
	if err != nil {
		return nil, fmt.Errorf("voicetest: peer connection: %w", err)
	}
	c.pc = pc
	c.mic = &synthTrack{}
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		mid := ""
		for _, tr := range pc.GetTransceivers() {
			if tr.Receiver() == r {
				mid = tr.Mid()
			}
		}
		c.goTracked(func() { c.receive(t, mid) })
		c.goTracked(func() {
			b := make([]byte, 1500)
			for {
				if _, _, err := r.Read(b); err != nil {
					return
				}
			}
		})
	})
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.run() }()
	return c, nil
}

func newAPI(tcp, video bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if video {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	for _, uri := range []string{sdp.AudioLevelURI, sdp.SDESMidURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(rr)
	ir.Add(sr)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

func (c *Client) goTracked(f func()) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); f() }()
}

// Send sends a client message (for messages the helpers do not cover,
// or bad ones on purpose). data is marshalled unless it is a
// json.RawMessage.
func (c *Client) Send(ctx context.Context, typ string, data any) error {
	raw, ok := data.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		raw = b
	}
	return c.cfg.Send(ctx, typ, raw)
}

// Deliver hands the client a realtime event from the service (voice.signal
// for its session, voice.state of rooms). It never blocks for long and
// never calls back into the service.
func (c *Client) Deliver(typ string, data json.RawMessage) {
	select {
	case c.queue <- event{typ, data}:
	case <-c.done:
	}
}

// Join offers a call in room and waits for the service's answer. A refusal
// is returned as the error Handle returned (or the bye's message).
func (c *Client) Join(ctx context.Context, room string, o JoinOptions) error {
	var err error
	switch {
	case o.NoAudio:
	case o.ListenOnly:
		_, err = c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	default:
		_, err = c.pc.AddTransceiverFromTrack(c.mic, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	}
	if err == nil && o.ExtraAudio {
		_, err = c.pc.AddTransceiverFromTrack(&synthTrack{id: "mic2"}, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	}
	if err == nil && o.Video {
		_, err = c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	}
	if err != nil {
		return fmt.Errorf("voicetest: add transceivers: %w", err)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("voicetest: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("voicetest: set offer: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	sdpText := c.pc.LocalDescription().SDP
	if o.EditOffer != nil {
		sdpText = o.EditOffer(sdpText)
	}
	answered := make(chan struct{})
	c.mu.Lock()
	c.room, c.participant, c.answered = room, "", answered
	c.mu.Unlock()
	if err := c.Send(ctx, voice.TypeJoin, voice.JoinMessage{Room: room, SDP: sdpText, Muted: o.Muted, Deafened: o.Deafened}); err != nil {
		return err
	}
	select {
	case <-answered:
	case <-ctx.Done():
		return fmt.Errorf("voicetest: waiting for the answer: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.participant == "" {
		if n := len(c.byes); n > 0 {
			return fmt.Errorf("voicetest: join refused: %s", c.byes[n-1].Message)
		}
		return errors.New("voicetest: join refused")
	}
	return nil
}

// Offer returns a valid offer with one Opus microphone m-line from a
// throwaway PeerConnection (already closed: whoever answers it never
// connects).
func Offer() (string, error) {
	api, err := newAPI(false, false)
	if err != nil {
		return "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromTrack(&synthTrack{}, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		return "", err
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		return "", err
	}
	<-gathered
	return pc.LocalDescription().SDP, nil
}

// run processes the service's events in order.
func (c *Client) run() {
	for {
		select {
		case <-c.done:
			return
		case ev := <-c.queue:
			if err := c.handle(ev); err != nil {
				c.log.Warn("voicetest event", "type", ev.typ, "err", err)
				c.mu.Lock()
				c.errs = append(c.errs, err)
				c.mu.Unlock()
			}
		}
	}
}

func (c *Client) handle(ev event) error {
	switch ev.typ {
	case voice.TypeState:
		var st voice.RoomState
		if err := json.Unmarshal(ev.data, &st); err != nil {
			return err
		}
		c.mu.Lock()
		c.states[st.Room] = st
		c.mu.Unlock()
		return nil
	case voice.TypeSignal:
	default:
		return nil
	}
	var sig voice.Signal
	if err := json.Unmarshal(ev.data, &sig); err != nil {
		return err
	}
	c.mu.Lock()
	me, answered := c.participant, c.answered
	c.mu.Unlock()
	if me != "" && sig.Participant != "" && sig.Participant != me {
		return nil // an earlier call's
	}
	switch sig.Type {
	case voice.SignalAnswer:
		if c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			return nil // an answer to an offer sent raw
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sig.SDP}); err != nil {
			return fmt.Errorf("set answer: %w", err)
		}
		c.mu.Lock()
		c.participant = sig.Participant
		c.answers = append(c.answers, sig.SDP)
		c.mu.Unlock()
		closeOnce(answered)
	case voice.SignalOffer:
		if c.cfg.IgnoreOffers {
			return nil
		}
		// pion starts ICE asynchronously after the first answer; an offer
		// applied before that looks like an ICE restart to it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = WaitFor(ctx, func() bool { return c.pc.ICEConnectionState() != webrtc.ICEConnectionStateNew })
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sig.SDP}); err != nil {
			return fmt.Errorf("set offer: %w", err)
		}
		answer, err := c.pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("answer: %w", err)
		}
		if err := c.pc.SetLocalDescription(answer); err != nil {
			return fmt.Errorf("set answer: %w", err)
		}
		c.mu.Lock()
		c.offers++
		c.mu.Unlock()
		return c.Send(ctx, voice.TypeSignal, voice.SignalMessage{Participant: sig.Participant, Type: voice.SignalAnswer,
			SDP: c.pc.LocalDescription().SDP})
	case voice.SignalCandidate:
		if sig.Candidate != nil {
			return c.pc.AddICECandidate(*sig.Candidate)
		}
	case voice.SignalTracks:
		m := map[string]string{}
		for _, t := range sig.Tracks {
			m[t.Mid] = t.Participant
		}
		c.mu.Lock()
		c.tracks = m
		c.mu.Unlock()
	case voice.SignalBye:
		c.mu.Lock()
		c.byes = append(c.byes, sig)
		c.mu.Unlock()
		closeOnce(answered)
	}
	return nil
}

func closeOnce(ch chan struct{}) {
	if ch == nil {
		return
	}
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// receive counts a receive slot's packets by the participant it carries.
func (c *Client) receive(t *webrtc.TrackRemote, mid string) {
	buf := make([]byte, 1500)
	var h rtp.Header
	var last uint16
	started := false
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		now := time.Now()
		c.received.Add(1)
		c.mu.Lock()
		c.from[c.tracks[mid]]++
		if d := h.SequenceNumber - last; started && d != 1 {
			c.gaps++
			if d > maxLoss+1 && d < 0x10000-maxLoss {
				c.jumps++
			}
		}
		started, last = true, h.SequenceNumber
		if c.cfg.RecordLatency && n-hl >= 9 {
			sent := int64(binary.BigEndian.Uint64(buf[hl+1 : hl+9]))
			c.latencies = append(c.latencies, now.Sub(time.Unix(0, sent)))
		}
		c.mu.Unlock()
	}
}

// talk sends synthetic Opus while talking is on.
func (c *Client) talk() {
	t := time.NewTicker(PacketInterval)
	defer t.Stop()
	payload := make([]byte, PayloadSize)
	payload[0] = 0xfc // TOC: CELT fullband 20 ms, one frame
	for i := 9; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if c.talking.Load() {
				binary.BigEndian.PutUint64(payload[1:9], uint64(time.Now().UnixNano()))
				c.mic.write(payload, uint8(c.level.Load()), 0)
			}
		}
	}
}

// Talk turns the synthetic microphone on (50 packets a second) or off.
// It only sends: whether the service forwards depends on voice.mute.
func (c *Client) Talk(on bool) {
	c.talking.Store(on)
	if on {
		c.talkOnce.Do(func() { c.goTracked(c.talk) })
	}
}

// SetLevel sets the audio level the microphone reports (LoudLevel,
// QuietLevel).
func (c *Client) SetLevel(level uint8) { c.level.Store(uint32(level)) }

// SendForeign sends n packets with an SSRC that was never negotiated.
func (c *Client) SendForeign(n int) {
	payload := make([]byte, PayloadSize)
	payload[0] = 0xfc
	for range n {
		c.mic.write(payload, LoudLevel, 0x5eed)
	}
}

// Mute, Deafen, Floor, OneTalker, Leave and Sync send the messages of the
// same name.
func (c *Client) Mute(ctx context.Context, muted bool) error {
	return c.Send(ctx, voice.TypeMute, map[string]bool{"muted": muted})
}

func (c *Client) Deafen(ctx context.Context, deafened bool) error {
	return c.Send(ctx, voice.TypeDeafen, map[string]bool{"deafened": deafened})
}

func (c *Client) Floor(ctx context.Context, action string) error {
	return c.Send(ctx, voice.TypeFloor, map[string]string{"action": action})
}

func (c *Client) OneTalker(ctx context.Context, on bool) error {
	return c.Send(ctx, voice.TypeMode, map[string]bool{"one_talker": on})
}

func (c *Client) Leave(ctx context.Context) error {
	return c.Send(ctx, voice.TypeLeave, struct{}{})
}

// Offer returns an offer for the client's current session (without
// applying it), e.g. to send raw.
func (c *Client) Offer() (string, error) {
	o, err := c.pc.CreateOffer(nil)
	return o.SDP, err
}

// Restart makes an ICE restart offer and sends it; the answer is applied
// when it comes.
func (c *Client) Restart(ctx context.Context) error {
	o, err := c.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(o); err != nil {
		return err
	}
	return c.Send(ctx, voice.TypeSignal, voice.SignalMessage{Type: voice.SignalOffer, SDP: o.SDP})
}

// ID is the client's participant ID once joined.
func (c *Client) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.participant
}

// SelectedPair describes the ICE candidate pair in use as "local ->
// remote", e.g. "relay/udp -> host/udp"; "" before one is chosen.
func (c *Client) SelectedPair() string {
	for _, tr := range c.pc.GetTransceivers() {
		if tr.Receiver() == nil || tr.Receiver().Transport() == nil {
			continue
		}
		if p, err := tr.Receiver().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
			return fmt.Sprintf("%s/%s -> %s/%s", p.Local.Typ, p.Local.Protocol, p.Remote.Typ, p.Remote.Protocol)
		}
	}
	return ""
}

// Connected reports whether media flows (the PeerConnection is connected).
func (c *Client) Connected() bool {
	return c.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
}

// Received returns the packets received from a participant (by ID) and in
// all.
func (c *Client) Received(from string) (n, total uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from[from], c.received.Load()
}

// Total returns the packets received in all.
func (c *Client) Total() uint64 { return c.received.Load() }

// Gaps returns how many received packets did not follow their slot's
// previous one in sequence.
func (c *Client) Gaps() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gaps
}

// maxLoss is the most consecutive packets Jumps puts down to loss.
const maxLoss = 5

// Jumps returns how many received packets were more than a few sequence
// numbers off their slot's previous one: not loss on the way (which Gaps
// counts too) but a discontinuity in the stream.
func (c *Client) Jumps() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jumps
}

// Tracks returns the current slot mapping (mid → participant).
func (c *Client) Tracks() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.tracks))
	for k, v := range c.tracks {
		out[k] = v
	}
	return out
}

// State returns the newest voice.state seen for room.
func (c *Client) State(room string) (voice.RoomState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.states[room]
	return st, ok
}

// Byes returns the bye signals received.
func (c *Client) Byes() []voice.Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]voice.Signal(nil), c.byes...)
}

// Answers returns the SDP answers the service sent.
func (c *Client) Answers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.answers...)
}

// Errors returns errors met handling the service's events.
func (c *Client) Errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

// TakeLatencies returns and forgets the recorded end-to-end latencies.
func (c *Client) TakeLatencies() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.latencies
	c.latencies = nil
	return l
}

// WaitFor polls cond until it holds or ctx ends.
func WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Close closes the PeerConnection and waits for the client's goroutines.
func (c *Client) Close() error {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.closeMu.Unlock()
	err := c.pc.Close()
	c.wg.Wait()
	return err
}

// synthTrack is the synthetic microphone: a TrackLocal that writes RTP
// with the negotiated SSRC, payload type and audio level extension.
type synthTrack struct {
	id      string // "" is "mic"
	mu      sync.Mutex
	w       webrtc.TrackLocalWriter
	ssrc    uint32
	pt      uint8
	levelID uint8
	seq     uint16
	ts      uint32
	hdr     rtp.Header
}

func (s *synthTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) {
			continue
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.w, s.ssrc, s.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(c.PayloadType)
		for _, e := range ctx.HeaderExtensions() {
			if e.URI == sdp.AudioLevelURI {
				s.levelID = uint8(e.ID)
			}
		}
		return c, nil
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (s *synthTrack) Unbind(webrtc.TrackLocalContext) error {
	s.mu.Lock()
	s.w = nil
	s.mu.Unlock()
	return nil
}

func (s *synthTrack) ID() string {
	if s.id == "" {
		return "mic"
	}
	return s.id
}

func (s *synthTrack) RID() string               { return "" }
func (s *synthTrack) StreamID() string          { return s.ID() }
func (s *synthTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// write sends one packet (with ssrc instead of the negotiated one when
// it is not zero).
func (s *synthTrack) write(payload []byte, level uint8, ssrc uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return
	}
	s.seq++
	s.ts += 960
	h := &s.hdr
	h.Version, h.PayloadType, h.SequenceNumber, h.Timestamp, h.SSRC = 2, s.pt, s.seq, s.ts, s.ssrc
	if ssrc != 0 {
		h.SSRC = ssrc
	}
	h.Extension, h.Extensions = false, h.Extensions[:0]
	if s.levelID != 0 {
		_ = h.SetExtension(s.levelID, []byte{level})
	}
	_, _ = s.w.WriteRTP(h, payload)
}
