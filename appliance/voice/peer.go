package voice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// gatherWait bounds how long a description waits for the appliance's
// candidates; later ones (TURN allocations) are trickled.
const gatherWait = time.Second

var errGlare = errors.New("offer collision")

// newPeer creates the participant's PeerConnection and its handlers.
func (s *Service) newPeer(p *participant, servers []webrtc.ICEServer) error {
	cert, err := s.certificate()
	if err != nil {
		return err
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{
		ICEServers:    servers,
		Certificates:  []webrtc.Certificate{cert},
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return fmt.Errorf("create peer connection: %w", err)
	}
	p.pc = pc
	pc.OnICECandidate(p.onCandidate)
	pc.OnConnectionStateChange(p.onConnectionState)
	pc.OnTrack(p.onTrack)
	return nil
}

// handleSignal runs a client's voice.signal.
func (p *participant) handleSignal(ctx context.Context, m SignalMessage) error {
	p.sig.Lock()
	defer p.sig.Unlock()
	switch m.Type {
	case SignalOffer:
		if !p.offers.allow(time.Now()) {
			return fmt.Errorf("%w: renegotiating too often", ErrTooFast)
		}
		if err := checkOffer(m.SDP, p.s.cfg.MaxParticipants); err != nil {
			return err
		}
		p.waitICEStarted(ctx)
		err := p.acceptOffer(ctx, m.SDP)
		switch {
		case errors.Is(err, errGlare):
			// The server's offer is in flight: the client, the polite
			// peer, rolls its offer back and answers ours.
			p.s.log.Debug("voice offer collision; ignoring the client's offer", "participant", p.id)
			return nil
		case err != nil && p.pc.SignalingState() != webrtc.SignalingStateStable:
			// pion cannot roll back: this call cannot negotiate again.
			p.s.remove(p, Code(err), err.Error())
		}
		return err
	case SignalAnswer:
		return p.acceptAnswer(m.SDP)
	case SignalCandidate:
		if m.Candidate == nil || m.Candidate.Candidate == "" {
			return nil // end of candidates
		}
		if p.pc.RemoteDescription() == nil {
			return fmt.Errorf("%w: candidate before offer", ErrBadMessage)
		}
		if p.cands++; p.cands > maxRemoteCandidates {
			return fmt.Errorf("%w: too many ICE candidates", ErrBadMessage)
		}
		if err := p.pc.AddICECandidate(*m.Candidate); err != nil {
			return fmt.Errorf("%w: ICE candidate: %v", ErrBadMessage, err)
		}
		return nil
	}
	return fmt.Errorf("%w: signal type is offer, answer or candidate", ErrBadMessage)
}

// acceptOffer answers a client offer (the join, or a later one such as an
// ICE restart) and sends the answer. p.sig is held.
func (p *participant) acceptOffer(ctx context.Context, offer string) error {
	switch p.pc.SignalingState() {
	case webrtc.SignalingStateStable:
	case webrtc.SignalingStateHaveLocalOffer:
		return errGlare
	default:
		return fmt.Errorf("%w: not ready for an offer", ErrBadMessage)
	}
	p.holdCandidates()
	defer p.releaseCandidates("")
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.cands = 0
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: answer: %v", ErrBadSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("%w: set answer: %v", ErrBadSDP, err)
	}
	p.waitGathering(ctx, gathered)
	desc := p.pc.LocalDescription()
	p.signal(Signal{Type: SignalAnswer, SDP: desc.SDP})
	p.releaseCandidates(desc.SDP)
	p.checkSlots()
	return nil
}

// waitICEStarted waits (briefly) until pion has started ICE after the
// first exchange: it does so asynchronously, and an offer applied before
// looks like an ICE restart to it (new credentials), which breaks the call.
func (p *participant) waitICEStarted(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(gatherWait)
	for p.pc.ICEConnectionState() == webrtc.ICEConnectionStateNew {
		select {
		case <-t.C:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		case <-p.done:
			return
		}
	}
}

func (p *participant) waitGathering(ctx context.Context, gathered <-chan struct{}) {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-ctx.Done():
	case <-p.done:
	}
}

// acceptAnswer applies the client's answer to the server's offer: the new
// slots are ready and get their talkers. p.sig is held.
func (p *participant) acceptAnswer(answer string) error {
	if p.offerAt.Load() == 0 || p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return fmt.Errorf("%w: no offer is waiting for an answer", ErrBadMessage)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		// The connection cannot go back to a stable state: end this call.
		err = fmt.Errorf("%w: answer: %v", ErrBadSDP, err)
		p.s.remove(p, Code(err), err.Error())
		return err
	}
	p.offerAt.Store(0)
	p.checkSlots()
	return nil
}

// checkSlots marks negotiated slots ready, drops slots the client stopped,
// and reassigns talkers. p.sig is held.
func (p *participant) checkSlots() {
	s := p.s
	s.mu.Lock()
	slots := append([]*slot(nil), p.slots...)
	s.mu.Unlock()
	type info struct {
		mid  string
		live bool
	}
	infos := make([]info, len(slots))
	for i, sl := range slots {
		d := sl.tr.Direction()
		infos[i] = info{mid: sl.tr.Mid(), live: d == webrtc.RTPTransceiverDirectionSendonly || d == webrtc.RTPTransceiverDirectionSendrecv}
	}
	s.mu.Lock()
	if p.gone {
		s.mu.Unlock()
		return
	}
	keep := p.slots[:0]
	for i, sl := range slots {
		if !infos[i].live {
			sl.src = nil
			sl.dt.setSource(nil)
			continue
		}
		if infos[i].mid != "" {
			sl.ready, sl.mid = true, infos[i].mid
		}
		keep = append(keep, sl)
	}
	p.slots = keep
	remap, reneg := s.reconcileLocked(p.room)
	s.mu.Unlock()
	s.publishRoom(p.room.id, remap)
	for _, l := range reneg {
		l.needNegotiation()
	}
}

// needNegotiation asks the participant's negotiator for an offer.
func (p *participant) needNegotiation() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// negotiator makes the server's offers, one at a time, until the
// participant is removed.
func (p *participant) negotiator() {
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
			if err := p.negotiate(); err != nil {
				select {
				case <-p.done:
					return // removed meanwhile: the connection is closed
				default:
				}
				p.s.log.Warn("voice renegotiation failed", "participant", p.id, "err", err)
				p.s.remove(p, "error", "The voice connection could not be renegotiated.")
				return
			}
		}
	}
}

// negotiate adds the receive slots the participant lacks and offers them.
// Without a stable signaling state it does nothing: the pending answer
// calls it again.
func (p *participant) negotiate() error {
	s := p.s
	p.sig.Lock()
	defer p.sig.Unlock()
	if p.offerAt.Load() != 0 || p.pc.SignalingState() != webrtc.SignalingStateStable || p.pc.RemoteDescription() == nil {
		return nil
	}
	s.mu.Lock()
	need, have, gone := len(p.waiting), len(p.slots), p.gone
	s.mu.Unlock()
	add := min(need+spareSlots, s.cfg.MaxParticipants-1-have)
	if gone || need == 0 || add <= 0 {
		return nil
	}
	var added []*slot
	for range add {
		dt := newDownTrack(p, newID())
		tr, err := p.pc.AddTransceiverFromTrack(dt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fmt.Errorf("add receive slot: %w", err)
		}
		sender := tr.Sender()
		if enc := sender.GetParameters().Encodings; len(enc) > 0 {
			dt.ssrc = uint32(enc[0].SSRC)
		}
		added = append(added, &slot{tr: tr, dt: dt})
		s.spawn(func() { dt.readRTCP(sender) })
	}
	s.mu.Lock()
	p.slots = append(p.slots, added...)
	s.mu.Unlock()

	p.holdCandidates()
	defer p.releaseCandidates("")
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set offer: %w", err)
	}
	p.offerAt.Store(time.Now().UnixNano())
	desc := p.pc.LocalDescription()
	p.signal(Signal{Type: SignalOffer, SDP: desc.SDP})
	p.releaseCandidates(desc.SDP)
	return nil
}

// holdCandidates queues the server's trickled candidates while a
// description is being made: they may only follow it.
func (p *participant) holdCandidates() {
	p.candMu.Lock()
	p.candHold = true
	p.candMu.Unlock()
}

// releaseCandidates sends the queued candidates that sdp does not carry
// already (all of them when sdp is empty) and lets later ones through.
func (p *participant) releaseCandidates(sentSDP string) {
	p.candMu.Lock()
	q := p.candQueue
	p.candQueue, p.candHold = nil, false
	p.candMu.Unlock()
	for _, c := range q {
		if sentSDP != "" && strings.Contains(sentSDP, "a="+c.Candidate+"\r\n") {
			continue
		}
		p.signal(Signal{Type: SignalCandidate, Candidate: &c})
	}
}

func (p *participant) onCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	p.candMu.Lock()
	if p.candHold {
		p.candQueue = append(p.candQueue, init)
		p.candMu.Unlock()
		return
	}
	p.candMu.Unlock()
	p.signal(Signal{Type: SignalCandidate, Candidate: &init})
}

func (p *participant) onConnectionState(st webrtc.PeerConnectionState) {
	s := p.s
	switch st {
	case webrtc.PeerConnectionStateConnected, webrtc.PeerConnectionStateDisconnected:
		s.mu.Lock()
		changed := p.connected != (st == webrtc.PeerConnectionStateConnected)
		p.connected = st == webrtc.PeerConnectionStateConnected
		p.everConnected = p.everConnected || p.connected
		s.mu.Unlock()
		if changed {
			s.spawn(func() { _ = s.update(p, nil) })
		}
	case webrtc.PeerConnectionStateFailed:
		s.spawn(func() { s.remove(p, "connection_failed", "The voice connection failed.") })
	case webrtc.PeerConnectionStateClosed:
		// The client closed it (DTLS close_notify), or remove did.
		s.spawn(func() { s.remove(p, "connection_closed", "The voice connection was closed.") })
	}
}

// onTrack starts forwarding a new Opus audio track of the participant's:
// its microphone (an offer sends at most one; after a renegotiation the
// newest replaces the one before). Any other track is read and dropped.
func (p *participant) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	s := p.s
	s.spawn(func() { drainRTCP(r) })
	if t.Kind() != webrtc.RTPCodecTypeAudio || !strings.EqualFold(t.Codec().MimeType, webrtc.MimeTypeOpus) {
		s.spawn(func() { p.drain(t) })
		return
	}
	var levelID uint8
	for _, e := range r.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			levelID = uint8(e.ID)
		}
	}
	p.mic.Store(t)
	s.spawn(func() { p.forward(t, levelID) })
}
