package relay

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v4"
)

// Defaults for the zero values of Config.
const (
	DefaultRealm         = "hearth"
	DefaultPortMin       = 49160
	DefaultPortMax       = 49200
	DefaultCredentialTTL = 10 * time.Minute
	// DefaultMaxAllocationsPerUser allows a few devices, each with a few
	// calls or transfers (a browser takes one allocation per TURN URL it
	// uses in each peer connection).
	DefaultMaxAllocationsPerUser = 16
	// DefaultMaxAllocationsPerAddr allows a household behind one NAT.
	DefaultMaxAllocationsPerAddr = 32
	// DefaultUserBandwidth is 100 Mbit/s of relayed payload per user, in
	// bytes per second, with one second's worth of burst.
	DefaultUserBandwidth = 12_500_000
	// DefaultRequestRate is the sustained TURN/STUN requests per second a
	// source address may send (bursts of twice that); more are dropped.
	DefaultRequestRate = 50
)

// Sentinel errors. Use errors.Is to test for them.
var (
	// ErrNoSecret means the Secrets hook returned no current secret.
	ErrNoSecret = errors.New("no TURN secret")
	// ErrBadUser means a user ID is empty, too long or has control characters.
	ErrBadUser = errors.New("user ID unusable in TURN credentials")
)

var errClosed = errors.New("relay closed")

// Config configures a Server. Only Secrets and at least one listener are
// required; every other zero value means the documented default.
type Config struct {
	// UDP serves STUN and TURN over UDP (Hearth binds :3478). nil: no UDP.
	// New enlarges the socket buffers of UDP sockets.
	UDP net.PacketConn
	// MoreUDP are more sockets on UDP's address, bound with SO_REUSEPORT
	// (see ListenUDPReusePort), for the kernel to spread clients over.
	// Optional: measured no faster than one socket (.ci/bench-relay).
	MoreUDP []net.PacketConn
	// TCP serves TURN over TCP (Hearth binds :3478). nil: no TCP.
	TCP net.Listener
	// TLS serves TURN over TLS: a listener that already speaks TLS, e.g.
	// tls.NewListener on the HTTPS certificate. nil: no TLS.
	TLS net.Listener
	// The sockets belong to the Server once handed to New (see New).

	// Realm is the TURN realm. Zero: DefaultRealm.
	Realm string
	// RelayIP is the IPv4 address relay sockets bind to. Zero: the LAN
	// address of the default-route interface (LANAddr). 0.0.0.0 binds all
	// interfaces (then PublicIP, or the detected LAN address, is advertised).
	RelayIP netip.Addr
	// PublicIP is the IPv4 address handed to clients as their relayed
	// address, for a relay behind port forwarding. Zero: RelayIP.
	PublicIP netip.Addr
	// PortMin and PortMax bound the relay ports, inclusive. Zero:
	// DefaultPortMin, DefaultPortMax.
	PortMin, PortMax uint16
	// CredentialTTL is how long credentials from Credentials allow new
	// allocations. Zero: DefaultCredentialTTL.
	CredentialTTL time.Duration

	// Secrets returns the shared secret credentials are signed with now,
	// and earlier ones that still validate (so that rotation does not break
	// live allocations: keep a previous secret for at least the longest
	// call). Required. It is called for each authenticated request, so it
	// should answer from memory.
	Secrets func() (current []byte, previous [][]byte)
	// IsKnownPeer reports whether a private or CGNAT address belongs to a
	// live Hearth session; only then may clients relay to it (besides this
	// server's own relay addresses). nil: no private peers.
	IsKnownPeer func(netip.Addr) bool

	// AllowPeers are prefixes clients may relay to even where the default
	// policy refuses (loopback for tests, a trusted subnet). A peer must
	// match with every address it stands for (see the package doc).
	// DenyPeers and protected ports win over it.
	AllowPeers []netip.Prefix
	// DenyPeers are prefixes clients may never relay to.
	DenyPeers []netip.Prefix
	// ProtectedPorts are the appliance's service ports (HTTPS, HTTP, ...),
	// refused as peers on any of its own, loopback or unspecified
	// addresses. The TURN listeners' ports are always protected.
	ProtectedPorts []uint16
	// ProtectedAddrPorts are further service addresses refused as peers
	// (e.g. a tailnet address the kernel does not know).
	ProtectedAddrPorts []netip.AddrPort
	// OpenPorts are the appliance's own UDP services clients may relay to
	// on its own addresses despite the rules above: the voice port, so a
	// device that reaches the appliance only through TURN can still join a
	// call. Relays carry UDP only, so a TCP service on the same port number
	// stays out of reach.
	OpenPorts []uint16

	// MaxAllocations bounds live allocations (then 508). Zero or negative:
	// the number of relay ports.
	MaxAllocations int
	// MaxAllocationsPerUser bounds one user's live allocations (then 486).
	// Zero: DefaultMaxAllocationsPerUser; negative: no bound.
	MaxAllocationsPerUser int
	// MaxAllocationsPerAddr bounds the live allocations from one source IP
	// address (then 486). Zero: DefaultMaxAllocationsPerAddr; negative: no
	// bound.
	MaxAllocationsPerAddr int
	// UserBandwidth bounds the payload relayed for one user, both
	// directions and all allocations together, in bytes per second, with
	// one second's worth of burst; datagrams over it are dropped. Zero:
	// DefaultUserBandwidth; negative: no bound.
	UserBandwidth int64
	// RequestRate bounds the requests per second from one source IP
	// address (bursts of twice that); more are dropped. Zero:
	// DefaultRequestRate; negative: no bound.
	RequestRate int

	// Logger receives the relay's logs and pion's. nil: discard.
	Logger *slog.Logger
	// LogAddrs logs full IP addresses; by default they are truncated to
	// /24 (IPv4) or /48 (IPv6).
	LogAddrs bool
}

func (c *Config) validate() error {
	if c.UDP == nil && len(c.MoreUDP) > 0 {
		return errors.New("relay config: MoreUDP without UDP")
	}
	if c.UDP == nil && c.TCP == nil && c.TLS == nil {
		return errors.New("relay config: no listener (UDP, TCP or TLS)")
	}
	if slices.Contains(c.MoreUDP, nil) {
		return errors.New("relay config: nil socket in MoreUDP")
	}
	if c.Secrets == nil {
		return errors.New("relay config: Secrets hook is required")
	}
	if strings.ContainsFunc(c.Realm, func(r rune) bool { return r < ' ' || r == 0x7f || r == '"' }) || len(c.Realm) > 127 {
		return fmt.Errorf("relay config: realm %q: want printable text, at most 127 bytes", c.Realm)
	}
	if c.RelayIP.IsValid() && (!c.RelayIP.Is4() || c.RelayIP.IsMulticast()) {
		return fmt.Errorf("relay config: relay IP %s: want an IPv4 unicast address (relays are IPv4)", c.RelayIP)
	}
	if c.PublicIP.IsValid() && (!c.PublicIP.Is4() || c.PublicIP.IsUnspecified() || c.PublicIP.IsMulticast()) {
		return fmt.Errorf("relay config: public IP %s: want an IPv4 unicast address (relays are IPv4)", c.PublicIP)
	}
	lo, hi := c.portRange()
	if lo > hi {
		return fmt.Errorf("relay config: port range %d-%d is empty", lo, hi)
	}
	if c.CredentialTTL < 0 {
		return fmt.Errorf("relay config: credential TTL %v is negative", c.CredentialTTL)
	}
	for _, p := range append(slices.Clone(c.AllowPeers), c.DenyPeers...) {
		if !p.IsValid() {
			return fmt.Errorf("relay config: invalid peer prefix %v", p)
		}
	}
	for _, ap := range c.ProtectedAddrPorts {
		if !ap.IsValid() {
			return fmt.Errorf("relay config: invalid protected address %v", ap)
		}
	}
	return nil
}

func (c *Config) portRange() (lo, hi uint16) {
	lo, hi = c.PortMin, c.PortMax
	if lo == 0 {
		lo = DefaultPortMin
	}
	if hi == 0 {
		hi = DefaultPortMax
	}
	return lo, hi
}

// orDefault returns v, or def when v is zero, or -1 (no bound) when v is
// negative.
func orDefault[T int | int64](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return -1
	}
	return v
}

// Server is a running TURN/STUN server. It is safe for concurrent use.
type Server struct {
	log      *slog.Logger
	logAddrs bool
	realm    string
	ttl      time.Duration
	secrets  func() ([]byte, [][]byte)

	relayIP, publicIP netip.Addr
	portMin, portMax  uint16
	maxTotal, maxUser int
	maxAddr           int
	userRate          int64
	requestRate       int
	udpPort, tcpPort  int // for URLs; 0 when off
	tlsPort           int

	pol      policy
	turn     *turn.Server
	poll     *poller
	pollDone chan struct{} // closed when the poller's goroutine ends
	ports    []relayPort   // indexed by port - portMin
	wg       sync.WaitGroup
	logs     logLimiter
	count    [len(allReasons)]atomic.Uint64
	skew     atomic.Int64 // added to the gate's clock, by tests

	mu          sync.Mutex
	closed      bool
	relays      map[uint16]*relayConn
	allocs      map[fiveTuple]*allocation
	fast        atomic.Pointer[map[fiveTuple]*allocation] // allocs, read without s.mu by the ChannelData path
	pending     map[fiveTuple]*pendingAlloc
	users       map[string]*userState
	addrs       map[netip.Addr]int // live and pending allocations per source address
	total       int                // live and pending allocations
	created     uint64
	closedIn    uint64 // bytes of allocations gone
	closedOut   uint64
	keys        map[string]keyEntry // verified keys handed to pion's AuthHandler
	rates       map[netip.Addr]*bucket
	streams     map[*streamConn]struct{}
	streamAddrs map[netip.Addr]int
	lastSweep   time.Time

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and starts serving on its sockets. The sockets belong
// to the Server from then on, whatever the outcome: New closes them when it
// fails, and Close closes them. UDP sockets that are *net.UDPConn are
// moved out of Go's netpoller (see poller).
func New(cfg Config) (_ *Server, err error) {
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
			closeSockets(cfg)
		}
	}()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		log:         cfg.Logger,
		logAddrs:    cfg.LogAddrs,
		realm:       cmp.Or(cfg.Realm, DefaultRealm),
		ttl:         cmp.Or(cfg.CredentialTTL, DefaultCredentialTTL),
		secrets:     cfg.Secrets,
		maxUser:     orDefault(cfg.MaxAllocationsPerUser, DefaultMaxAllocationsPerUser),
		maxAddr:     orDefault(cfg.MaxAllocationsPerAddr, DefaultMaxAllocationsPerAddr),
		userRate:    orDefault(cfg.UserBandwidth, DefaultUserBandwidth),
		requestRate: orDefault(cfg.RequestRate, DefaultRequestRate),
		relays:      map[uint16]*relayConn{},
		allocs:      map[fiveTuple]*allocation{},
		pending:     map[fiveTuple]*pendingAlloc{},
		users:       map[string]*userState{},
		addrs:       map[netip.Addr]int{},
		keys:        map[string]keyEntry{},
		rates:       map[netip.Addr]*bucket{},
		streams:     map[*streamConn]struct{}{},
		streamAddrs: map[netip.Addr]int{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.fast.Store(&map[fiveTuple]*allocation{})
	s.portMin, s.portMax = cfg.portRange()
	s.ports = make([]relayPort, int(s.portMax)-int(s.portMin)+1)
	s.maxTotal = cfg.MaxAllocations
	if s.maxTotal <= 0 || s.maxTotal > len(s.ports) {
		s.maxTotal = len(s.ports)
	}

	s.relayIP, s.publicIP = cfg.RelayIP, cfg.PublicIP
	if !s.relayIP.IsValid() || (s.relayIP.IsUnspecified() && !s.publicIP.IsValid()) {
		lan, err := LANAddr()
		if err != nil {
			return nil, fmt.Errorf("relay: no relay address configured and %w", err)
		}
		if !s.relayIP.IsValid() {
			s.relayIP = lan
		}
		if s.relayIP.IsUnspecified() {
			s.publicIP = lan
		}
	}
	if !s.publicIP.IsValid() {
		s.publicIP = s.relayIP
	}

	listeners := s.buildPolicy(cfg)
	s.udpPort, s.tcpPort, s.tlsPort = listeners.udp, listeners.tcp, listeners.tls

	poll, err := newPoller()
	if err != nil {
		return nil, fmt.Errorf("start relay poller: %w", err)
	}
	s.poll = poll
	s.pollDone = make(chan struct{})
	go func() {
		defer close(s.pollDone)
		if err := poll.run(make([]byte, 4+maxRelayed)); err != nil {
			s.log.Error("relay poller stopped", "err", err)
		}
	}()
	cleanup = append(cleanup, func() { poll.stop(); <-s.pollDone })

	alloc := &portAllocator{s: s}
	sc := turn.ServerConfig{
		Realm:         s.realm,
		AuthHandler:   s.authKey,
		LoggerFactory: pionLogger{s: s},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnPermissionCreated: s.onPermissionCreated,
			OnPermissionDeleted: s.onPermissionDeleted,
			OnChannelCreated:    s.onChannelCreated,
			OnChannelDeleted:    s.onChannelDeleted,
		},
	}
	if cfg.UDP != nil {
		for _, pc := range append([]net.PacketConn{cfg.UDP}, cfg.MoreUDP...) {
			setBuffers(pc, listenerBuffer)
			var served net.PacketConn = newPacketGate(s, pc)
			if uc, ok := pc.(*net.UDPConn); ok {
				l, err := s.adoptUDP(uc)
				if err != nil {
					return nil, fmt.Errorf("serve UDP %s: %w", uc.LocalAddr(), err)
				}
				cleanup = append(cleanup, func() { l.Close() })
				served = l
			}
			s.wg.Add(1)
			sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
				PacketConn:            served,
				RelayAddressGenerator: alloc,
				PermissionHandler:     s.permit,
			})
		}
	}
	for _, l := range []struct {
		l         net.Listener
		transport string
	}{{cfg.TCP, "tcp"}, {cfg.TLS, "tls"}} {
		if l.l == nil {
			continue
		}
		s.wg.Add(1)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener:              &streamListener{Listener: l.l, s: s, transport: l.transport},
			RelayAddressGenerator: alloc,
			PermissionHandler:     s.permit,
		})
	}
	ts, err := turn.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("start TURN server: %w", err)
	}
	s.turn = ts
	s.log.Info("relay serving", "udp", s.udpPort, "udp_sockets", len(sc.PacketConnConfigs), "tcp", s.tcpPort,
		"tls", s.tlsPort, "relay_ip", s.relayIP, "advertised_ip", s.publicIP,
		"ports", fmt.Sprintf("%d-%d", s.portMin, s.portMax))
	return s, nil
}

// closeSockets closes the sockets of a Config New could not serve.
func closeSockets(cfg Config) {
	for _, c := range append([]net.PacketConn{cfg.UDP}, cfg.MoreUDP...) {
		if c != nil {
			c.Close()
		}
	}
	for _, l := range []net.Listener{cfg.TCP, cfg.TLS} {
		if l != nil {
			l.Close()
		}
	}
}

type listenerPorts struct{ udp, tcp, tls int }

// buildPolicy fills s.pol from cfg and the machine's addresses, and returns
// the listeners' ports.
func (s *Server) buildPolicy(cfg Config) listenerPorts {
	var lp listenerPorts
	p := &s.pol
	p.allow = slices.Clone(cfg.AllowPeers)
	p.deny = slices.Clone(cfg.DenyPeers)
	p.protectedPorts = slices.Clone(cfg.ProtectedPorts)
	p.openPorts = slices.Clone(cfg.OpenPorts)
	p.protectedAddrPorts = slices.Clone(cfg.ProtectedAddrPorts)
	p.isKnownPeer = cfg.IsKnownPeer
	p.isRelayPort = s.isRelayPort
	for _, ip := range []netip.Addr{s.relayIP, s.publicIP} {
		if !ip.IsUnspecified() && !slices.Contains(p.relayIPs, ip) {
			p.relayIPs = append(p.relayIPs, ip)
		}
	}
	addOwn := func(a netip.Addr) {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !a.IsUnspecified() && !slices.Contains(p.own, a) {
			p.own = append(p.own, a)
		}
	}
	for _, ip := range p.relayIPs {
		addOwn(ip)
	}
	protect := func(a net.Addr) int {
		ap := addrPort(a)
		addOwn(ap.Addr())
		if !slices.Contains(p.protectedPorts, ap.Port()) {
			p.protectedPorts = append(p.protectedPorts, ap.Port())
		}
		return int(ap.Port())
	}
	if cfg.UDP != nil {
		lp.udp = protect(cfg.UDP.LocalAddr())
	}
	if cfg.TCP != nil {
		lp.tcp = protect(cfg.TCP.Addr())
	}
	if cfg.TLS != nil {
		lp.tls = protect(cfg.TLS.Addr())
	}
	if ifAddrs, err := net.InterfaceAddrs(); err != nil {
		s.log.Warn("list interface addresses; only configured ones are treated as the appliance's own", "err", err)
	} else {
		for _, ia := range ifAddrs {
			n, ok := ia.(*net.IPNet)
			if !ok {
				continue
			}
			a, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			addOwn(a)
			ones, bits := n.Mask.Size()
			if a = a.Unmap(); a.Is4() && bits == 32 && ones < 31 {
				b := a.As4()
				for i := range b {
					b[i] |= ^n.Mask[len(n.Mask)-4+i]
				}
				p.broadcasts = append(p.broadcasts, netip.AddrFrom4(b))
			}
		}
	}
	return lp
}

// Socket buffer sizes asked for (the kernel caps them at net.core.rmem_max
// and wmem_max): one TURN socket carries every client's datagrams, in
// bursts, so the default (about 200 KB) overflows under load.
const (
	listenerBuffer = 2 << 20
	relayBuffer    = 256 << 10
)

// setBuffers enlarges a socket's buffers where it can; failure is harmless.
func setBuffers(c any, size int) {
	if b, ok := c.(interface{ SetReadBuffer(int) error }); ok {
		b.SetReadBuffer(size)
	}
	if b, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
		b.SetWriteBuffer(size)
	}
}

// Addr returns the relay address advertised to clients.
func (s *Server) Addr() netip.Addr { return s.publicIP }

// Close stops serving, closes every socket and relay, and waits (briefly)
// for pion's goroutines to finish. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		streams := make([]*streamConn, 0, len(s.streams))
		for c := range s.streams {
			streams = append(streams, c)
		}
		relays := make([]*relayConn, 0, len(s.relays))
		for _, c := range s.relays {
			relays = append(relays, c)
		}
		s.mu.Unlock()

		if err := s.turn.Close(); err != nil {
			s.closeErr = fmt.Errorf("close TURN server: %w", err)
		}
		for _, c := range streams {
			c.Close()
		}
		for _, c := range relays {
			c.Close()
		}
		s.poll.stop()
		done := make(chan struct{})
		go func() { s.wg.Wait(); <-s.pollDone; close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.log.Warn("relay goroutines still running 5s after close")
		}
		s.log.Info("relay stopped")
	})
	return s.closeErr
}

// fiveTuple identifies an allocation: the client's address, the server
// address it talks to, and whether over a stream (TCP, TLS).
type fiveTuple struct {
	client, server netip.AddrPort
	stream         bool
}

func newFiveTuple(client, server net.Addr) fiveTuple {
	_, stream := server.(*net.TCPAddr)
	return fiveTuple{client: addrPort(client), server: addrPort(server), stream: stream}
}

// addrPort converts a UDP or TCP address, unmapping IPv4-mapped forms.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		if a != nil {
			ap, _ = netip.ParseAddrPort(a.String())
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}
