package peer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// ConnConfig configures the PeerConnections of a transfer.
type ConnConfig struct {
	// ICEServers come from GET /api/v1/turn/credentials.
	ICEServers []webrtc.ICEServer
	// RelayOnly uses TURN relay candidates only (privacy mode, guests).
	RelayOnly bool
	// LoopbackOnly gathers only 127.0.0.1 host candidates: both peers run
	// on this machine (tests, an appliance reached on loopback).
	LoopbackOnly bool
	Logger       *slog.Logger // nil: discard
}

// Conn is one PeerConnection of a transfer: the sender's side makes the
// offer and the data channel, the receiver's side answers.
type Conn struct {
	pc  *webrtc.PeerConnection
	log *slog.Logger

	mu        sync.Mutex
	remoteSet bool
	pending   []webrtc.ICECandidateInit
	lost      chan struct{}
	lostOnce  sync.Once
	connected chan struct{}
	connOnce  sync.Once
	dc        chan *webrtc.DataChannel
	early     map[*webrtc.DataChannel]*msgSwitch
}

// msgSwitch holds a data channel's messages from the moment it opens until
// a handler is set: pion drops messages that arrive while a channel has
// no OnMessage handler, and the sender's manifest comes at once.
type msgSwitch struct {
	mu     sync.Mutex
	queue  []webrtc.DataChannelMessage
	target func(webrtc.DataChannelMessage)
}

func newSwitch(dc *webrtc.DataChannel) *msgSwitch {
	sw := &msgSwitch{}
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		if sw.target == nil {
			sw.queue = append(sw.queue, m)
			return
		}
		sw.target(m)
	})
	return sw
}

// set delivers the held messages, then every later one, to target, in
// order.
func (sw *msgSwitch) set(target func(webrtc.DataChannelMessage)) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, m := range sw.queue {
		target(m)
	}
	sw.queue, sw.target = nil, target
}

// Signal is what one side tells the other through the appliance: an SDP
// or a trickled candidate.
type Signal struct {
	SDP       *webrtc.SessionDescription `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
}

func newAPI(cfg ConnConfig) *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// Notice a dead path within seconds, not half a minute: resume
	// depends on it.
	se.SetICETimeouts(4*time.Second, 8*time.Second, time.Second)
	if cfg.RelayOnly {
		// Only relay pairs exist: nothing better is worth waiting for
		// (pion otherwise waits 2 s before nominating a relay pair).
		se.SetRelayAcceptanceMinWait(0)
	}
	if cfg.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

func newConn(cfg ConnConfig, signal func(Signal)) (*Conn, error) {
	pcfg := webrtc.Configuration{ICEServers: cfg.ICEServers}
	if cfg.RelayOnly {
		pcfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := newAPI(cfg).NewPeerConnection(pcfg)
	if err != nil {
		return nil, fmt.Errorf("create peer connection: %w", err)
	}
	c := &Conn{pc: pc, log: cfg.Logger, lost: make(chan struct{}), connected: make(chan struct{}), dc: make(chan *webrtc.DataChannel, 1),
		early: map[*webrtc.DataChannel]*msgSwitch{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		signal(Signal{Candidate: &init})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.log.Debug("peer connection", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			c.connOnce.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			c.lostOnce.Do(func() { close(c.lost) })
		}
	})
	return c, nil
}

// NewOfferer makes the sender's PeerConnection with its data channel and
// signals the offer.
func NewOfferer(cfg ConnConfig, signal func(Signal)) (*Conn, *webrtc.DataChannel, error) {
	c, err := newConn(cfg, signal)
	if err != nil {
		return nil, nil, err
	}
	ordered := true
	dc, err := c.pc.CreateDataChannel(Label, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("create data channel: %w", err)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("make offer: %w", err)
	}
	signal(Signal{SDP: &offer})
	return c, dc, nil
}

// NewAnswerer makes the receiver's PeerConnection for an offer and
// signals the answer; DataChannel yields the sender's channel.
func NewAnswerer(cfg ConnConfig, offer webrtc.SessionDescription, signal func(Signal)) (*Conn, error) {
	c, err := newConn(cfg, signal)
	if err != nil {
		return nil, err
	}
	c.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != Label {
			dc.Close()
			return
		}
		sw := newSwitch(dc)
		c.mu.Lock()
		c.early[dc] = sw
		c.mu.Unlock()
		select {
		case c.dc <- dc:
		default:
			dc.Close() // one channel per connection
		}
	})
	if err := c.setRemote(offer); err != nil {
		c.Close()
		return nil, err
	}
	answer, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(answer)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("make answer: %w", err)
	}
	signal(Signal{SDP: &answer})
	return c, nil
}

// DataChannel yields the channel the sender opened (receiver side).
func (c *Conn) DataChannel() <-chan *webrtc.DataChannel { return c.dc }

// OnMessages sets the message handler of a channel the other side opened
// (from DataChannel), delivering first the messages that arrived before.
func (c *Conn) OnMessages(dc *webrtc.DataChannel, f func(webrtc.DataChannelMessage)) {
	if sw := c.messages(dc); sw != nil {
		sw.set(f)
		return
	}
	dc.OnMessage(f)
}

// messages returns the switch holding dc's first messages.
func (c *Conn) messages(dc *webrtc.DataChannel) *msgSwitch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.early[dc]
}

// Lost is closed when the connection failed or closed.
func (c *Conn) Lost() <-chan struct{} { return c.lost }

// Connected is closed once the connection is up.
func (c *Conn) Connected() <-chan struct{} { return c.connected }

func (c *Conn) setRemote(sd webrtc.SessionDescription) error {
	if err := c.pc.SetRemoteDescription(sd); err != nil {
		return fmt.Errorf("apply the other side's %s: %w", sd.Type, err)
	}
	c.mu.Lock()
	c.remoteSet = true
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, cand := range pending {
		if err := c.pc.AddICECandidate(cand); err != nil {
			c.log.Debug("add candidate", "err", err)
		}
	}
	return nil
}

// Apply takes a signal from the other side: the answer (sender side) or
// a candidate. Candidates before the remote description wait for it.
func (c *Conn) Apply(s Signal) error {
	if s.SDP != nil {
		if s.SDP.Type != webrtc.SDPTypeAnswer {
			return errors.New("expected an answer")
		}
		return c.setRemote(*s.SDP)
	}
	if s.Candidate == nil || s.Candidate.Candidate == "" {
		return nil // end of candidates
	}
	c.mu.Lock()
	if !c.remoteSet {
		c.pending = append(c.pending, *s.Candidate)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	if err := c.pc.AddICECandidate(*s.Candidate); err != nil {
		return fmt.Errorf("add candidate: %w", err)
	}
	return nil
}

// Close ends the connection. It is safe to call more than once.
func (c *Conn) Close() error {
	err := c.pc.Close()
	c.lostOnce.Do(func() { close(c.lost) })
	return err
}

// SelectedPair describes the ICE candidate pair in use as "local ->
// remote", e.g. "relay/udp -> relay/udp"; "" before one is chosen.
func (c *Conn) SelectedPair() string {
	sctp := c.pc.SCTP()
	if sctp == nil || sctp.Transport() == nil {
		return ""
	}
	p, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || p == nil {
		return ""
	}
	return fmt.Sprintf("%s/%s -> %s/%s", p.Local.Typ, p.Local.Protocol, p.Remote.Typ, p.Remote.Protocol)
}

// Verification is the string both sides show (PROTOCOL.md section 4):
// SHA-256 over the two DTLS fingerprints (the a=fingerprint values of the
// two SDPs, sorted, joined with "\n"), written in decimal, its first six
// digits as "123 456". "" before both descriptions are known.
func (c *Conn) Verification() string {
	l, r := c.pc.CurrentLocalDescription(), c.pc.CurrentRemoteDescription()
	if l == nil || r == nil {
		return ""
	}
	return Verification(l.SDP, r.SDP)
}

// Verification computes the verification string from two SDPs.
func Verification(sdpA, sdpB string) string {
	a, b := fingerprint(sdpA), fingerprint(sdpB)
	if a == "" || b == "" {
		return ""
	}
	fps := []string{a, b}
	sort.Strings(fps)
	sum := sha256.Sum256([]byte(strings.Join(fps, "\n")))
	d := new(big.Int).SetBytes(sum[:]).String()
	if len(d) < 6 {
		d = strings.Repeat("0", 6-len(d)) + d
	}
	return d[:3] + " " + d[3:6]
}

// fingerprint returns the value of the first a=fingerprint line
// ("sha-256 AB:CD:…").
func fingerprint(sdp string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
