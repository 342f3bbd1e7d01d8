package voice

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxParticipants is the most people in one voice channel.
	DefaultMaxParticipants = 25
	// DefaultConnectTimeout is how long a participant's connection may take
	// to come up (ICE and DTLS) before the participant is removed.
	DefaultConnectTimeout = 20 * time.Second
	// DefaultNegotiationTimeout is how long the server waits for the answer
	// to one of its offers before it removes the participant.
	DefaultNegotiationTimeout = 10 * time.Second
	// DefaultFloorIdle releases the floor of a one-talker room when its
	// holder has not spoken for this long.
	DefaultFloorIdle = 10 * time.Second
	// DefaultFloorMax releases the floor after this long however much its
	// holder speaks (they may ask for it again).
	DefaultFloorMax = 2 * time.Minute
	// DefaultSpeakingLevel is the audio level (RFC 6464: -dBov, 0 loudest,
	// 127 silence) at or below which (that is, at least this loud) a packet
	// counts as speech for the speaking indicators.
	DefaultSpeakingLevel = 50
)

// Sentinel errors. Handle returns them wrapped; use errors.Is, or Code for
// a stable snake_case code.
var (
	// ErrClosed is returned once the Service has been closed.
	ErrClosed = errors.New("voice is shutting down")
	// ErrForbidden means CanJoin refused the user.
	ErrForbidden = errors.New("not allowed in this voice channel")
	// ErrRoomFull means the room has MaxParticipants people.
	ErrRoomFull = errors.New("voice channel is full")
	// ErrNotJoined means the session is in no voice channel (or in another
	// one than the message names).
	ErrNotJoined = errors.New("not in this voice channel")
	// ErrBadMessage means a message could not be decoded or does not fit
	// the call's state.
	ErrBadMessage = errors.New("malformed voice message")
	// ErrBadSDP means a session description was malformed or unusable.
	ErrBadSDP = errors.New("unusable session description")
	// ErrAudioOnly means an offer has media other than Opus audio (video,
	// a data channel, another codec) or no Opus audio at all.
	ErrAudioOnly = errors.New("voice calls carry Opus audio only")
	// ErrTooFast means a session joined or renegotiated too often.
	ErrTooFast = errors.New("too many voice requests, slow down")
	// ErrFloorTaken means someone else holds the floor of a one-talker room.
	ErrFloorTaken = errors.New("someone else has the floor")
	// ErrUnknownType means a voice.* message type this package does not know.
	ErrUnknownType = errors.New("unknown voice message type")
)

// Code returns a stable snake_case code for an error from Handle (for the
// UI), or "error" for an unknown one.
func Code(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}

var errorCodes = [...]struct {
	err  error
	code string
}{
	{ErrClosed, "shutting_down"}, {ErrForbidden, "forbidden"}, {ErrRoomFull, "room_full"},
	{ErrNotJoined, "not_joined"}, {ErrBadMessage, "bad_message"}, {ErrBadSDP, "bad_sdp"},
	{ErrAudioOnly, "audio_only"}, {ErrTooFast, "too_fast"}, {ErrFloorTaken, "floor_taken"},
	{ErrUnknownType, "unknown_type"},
}

// Config configures a Service. UDP, CanJoin and Publish are required;
// every other zero value means the documented default.
type Config struct {
	// UDP is the appliance's voice port: ICE, DTLS and media of every call
	// are multiplexed on it (one port for firewalls and tailnets). Bound to
	// an unspecified address (":PORT"), candidates are offered for every
	// interface's address except loopback; bound to one address, for that
	// address only (a loopback address, e.g. in tests, is then offered).
	UDP net.PacketConn
	// MoreUDP are further sockets offered as candidates too, e.g. one on
	// the tailnet's address. Optional.
	MoreUDP []net.PacketConn
	// TCP, when set, accepts ICE over TCP (RFC 6544 passive candidates) for
	// clients whose UDP is blocked. Optional.
	TCP net.Listener
	// The Service owns the sockets once New succeeds: Close closes them.

	// IPFilter, when set, says which of the appliance's addresses are
	// offered as candidates (e.g. to leave out a container bridge). nil:
	// all of them.
	IPFilter func(net.IP) bool

	// MaxParticipants bounds the people in one room. Zero:
	// DefaultMaxParticipants.
	MaxParticipants int
	// ConnectTimeout, NegotiationTimeout, FloorIdle and FloorMax: zero means
	// the Default of the same name.
	ConnectTimeout     time.Duration
	NegotiationTimeout time.Duration
	FloorIdle          time.Duration
	FloorMax           time.Duration
	// SpeakingLevel is the RFC 6464 level (0-127, -dBov) at or below which
	// a packet counts as speech. Zero: DefaultSpeakingLevel.
	SpeakingLevel int

	// CanJoin reports whether a user may join a room (a voice channel's
	// ID). It is asked on every join and by Recheck. Required.
	CanJoin func(userID, roomID string) bool
	// Publish delivers an event to clients (ephemeral, ID 0): voice.signal
	// events to one session, voice.state events to a room's channel
	// audience (or to one session, answering voice.sync). It must not
	// block and must not call back into the Service. Required.
	Publish func(hub.Event)
	// ICEServers returns the STUN/TURN servers the appliance's side of a
	// user's call gathers candidates from (TURN credentials from the
	// relay), so that a client that can reach only the relay still
	// connects. nil, or a nil result: host candidates only.
	ICEServers func(userID string) []webrtc.ICEServer
	// OneTalker reports whether a room starts in one-talker mode when its
	// first participant joins. nil: rooms start in open mode.
	OneTalker func(roomID string) bool
	// Logger receives the service's logs and pion's. nil: discard.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	switch {
	case c.UDP == nil:
		return errors.New("voice config: UDP socket is required")
	case slices.Contains(c.MoreUDP, nil):
		return errors.New("voice config: nil socket in MoreUDP")
	case c.CanJoin == nil:
		return errors.New("voice config: CanJoin hook is required")
	case c.Publish == nil:
		return errors.New("voice config: Publish hook is required")
	case c.MaxParticipants < 0:
		return fmt.Errorf("voice config: max participants %d is negative", c.MaxParticipants)
	case c.ConnectTimeout < 0 || c.NegotiationTimeout < 0 || c.FloorIdle < 0 || c.FloorMax < 0:
		return errors.New("voice config: timeouts must not be negative")
	case c.SpeakingLevel < 0 || c.SpeakingLevel > 127:
		return fmt.Errorf("voice config: speaking level %d: want 0-127 (-dBov)", c.SpeakingLevel)
	}
	if _, ok := c.UDP.LocalAddr().(*net.UDPAddr); !ok {
		return fmt.Errorf("voice config: UDP socket address %v is not a UDP address", c.UDP.LocalAddr())
	}
	for _, pc := range c.MoreUDP {
		if _, ok := pc.LocalAddr().(*net.UDPAddr); !ok {
			return fmt.Errorf("voice config: UDP socket address %v is not a UDP address", pc.LocalAddr())
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.MaxParticipants == 0 {
		c.MaxParticipants = DefaultMaxParticipants
	}
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.NegotiationTimeout, DefaultNegotiationTimeout)
	def(&c.FloorIdle, DefaultFloorIdle)
	def(&c.FloorMax, DefaultFloorMax)
	if c.SpeakingLevel == 0 {
		c.SpeakingLevel = DefaultSpeakingLevel
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Service is the voice SFU: the rooms, their participants' connections and
// the forwarding between them. It is safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	api    *webrtc.API
	muxes  []interface{ Close() error }
	counts counters

	certMu sync.Mutex
	cert   *webrtc.Certificate

	// Lock order: participant.sig, then pubMu, then mu, then downTrack.mu.
	// Nothing is called out (hooks, pion) while mu is held, except Publish
	// under pubMu.
	pubMu    sync.Mutex // serializes snapshots and their publication
	mu       sync.Mutex
	rooms    map[string]*room
	sessions map[string]*participant
	joins    map[string]*bucket // per session
	closed   bool
	wake     chan struct{} // a room opened: the ticker runs
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

// New builds a Service on the given sockets. Nothing happens until a client
// joins.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Service{cfg: cfg, log: cfg.Logger, rooms: map[string]*room{}, sessions: map[string]*participant{},
		joins: map[string]*bucket{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := s.buildAPI(); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.tick() }()
	return s, nil
}

// buildAPI sets up the pion API every call shares: Opus only with the
// audio level extension, RTCP reports, ICE on the handed-in sockets.
func (s *Service) buildAPI() error {
	lf := pionLogger{log: s.log, limits: &logLimiter{}}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability, PayloadType: opusPayloadType},
		webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("register opus: %w", err)
	}
	for _, uri := range []string{sdp.AudioLevelURI, sdp.SDESMidURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("register header extension %s: %w", uri, err)
		}
	}
	ir := &interceptor.Registry{}
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return fmt.Errorf("receiver reports: %w", err)
	}
	sr, err := report.NewSenderInterceptor(report.WithSenderLoggerFactory(lf))
	if err != nil {
		return fmt.Errorf("sender reports: %w", err)
	}
	ir.Add(rr)
	ir.Add(sr)

	se := webrtc.SettingEngine{LoggerFactory: lf}
	loopback := false
	var udpMuxes []ice.UDPMux
	for _, pc := range append([]net.PacketConn{s.cfg.UDP}, s.cfg.MoreUDP...) {
		if pc.LocalAddr().(*net.UDPAddr).IP.IsLoopback() {
			loopback = true
		}
		m := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: pc, Logger: lf.NewLogger("ice")})
		udpMuxes = append(udpMuxes, m)
		s.muxes = append(s.muxes, m)
	}
	if len(udpMuxes) == 1 {
		se.SetICEUDPMux(udpMuxes[0])
	} else {
		se.SetICEUDPMux(ice.NewMultiUDPMuxDefault(udpMuxes...))
	}
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.cfg.TCP != nil {
		m := ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: s.cfg.TCP, Logger: lf.NewLogger("ice"), ReadBufferSize: 64,
			WriteBufferSize: 1 << 20, FirstStunBindTimeout: 10 * time.Second})
		s.muxes = append(s.muxes, m)
		se.SetICETCPMux(m)
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	se.SetIncludeLoopbackCandidate(loopback)
	if s.cfg.IPFilter != nil {
		se.SetIPFilter(s.cfg.IPFilter)
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	se.DisableActiveTCP(true)
	s.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
	return nil
}

// certificate is the DTLS certificate every call uses (one key pair saves
// a key generation per call), renewed a day before it expires.
func (s *Service) certificate() (webrtc.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if s.cert == nil || time.Until(s.cert.Expires()) < 24*time.Hour {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return webrtc.Certificate{}, fmt.Errorf("generate DTLS key: %w", err)
		}
		cert, err := webrtc.GenerateCertificate(key)
		if err != nil {
			return webrtc.Certificate{}, fmt.Errorf("generate DTLS certificate: %w", err)
		}
		s.cert = cert
	}
	return *s.cert, nil
}

// spawn runs f in a goroutine that Close waits for; it reports false (and
// does not run f) once the Service is closing.
func (s *Service) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
	return true
}

// Close ends every call (each participant gets a voice.signal "bye" with
// reason shutting_down), waits for the service's goroutines and closes the
// sockets. It is safe to call more than once.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	var all []*participant
	for _, p := range s.sessions {
		all = append(all, p)
	}
	s.mu.Unlock()
	for _, p := range all {
		s.remove(p, "shutting_down", "The voice service is shutting down.")
	}
	s.wg.Wait()
	var errs []error
	for _, m := range s.muxes {
		if err := m.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close voice sockets: %w", err)
	}
	return nil
}
