package relay

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/stun/v3"
)

// Bookkeeping bounds.
const (
	pendingTTL     = 5 * time.Second  // an admitted Allocate pion has not created yet
	keyIdle        = 15 * time.Minute // a verified key unused this long is forgotten
	userIdle       = time.Hour        // a user without allocations is forgotten
	sweepEvery     = 5 * time.Second
	maxRateEntries = 1 << 16 // source addresses with their own request bucket
	protoUDP       = 17      // REQUESTED-TRANSPORT value for UDP
	// maxPeers bounds an allocation's permissions (peer IP addresses) and
	// its channels; a browser needs one per remote candidate.
	maxPeers = 64
)

// pendingAlloc is an Allocate the gate admitted, counted against the quotas
// until pion reports the allocation (or pendingTTL passes).
type pendingAlloc struct {
	user      *userState
	transport string
	out       clientOut
	at        time.Time
}

// keyEntry is a long-term key the gate verified, kept for pion.
type keyEntry struct {
	key  []byte
	used time.Time
}

// origin is where a message from a client came from and how to answer.
type origin struct {
	ft        fiveTuple
	transport string // "udp", "tcp" or "tls"
	out       clientOut
}

// clientOut writes to a client over its TURN socket or stream.
type clientOut interface {
	write(b []byte) error
}

// screen looks at a datagram or stream frame from a client before pion
// does, and answers where pion would answer wrongly or not at all: 401 for
// bad, expired or unknown-secret credentials (pion says 400), 441 for a
// username that does not own the allocation, 442 for non-UDP relays, 403 or
// 443 for forbidden peers, 486 and 508 over quota (allocations, or
// maxPeers permissions or channels on one allocation); request floods are
// dropped. It returns true to hand the message to pion.
func (s *Server) screen(b []byte, o origin) bool {
	if len(b) < 20 || b[0]&0xc0 != 0 || (uint16(b[0])<<8|uint16(b[1]))&0x0110 != 0 {
		return true // ChannelData, an indication or a response: pion's
	}
	m := &stun.Message{Raw: slices.Clone(b)}
	if m.Decode() != nil {
		return true // pion drops it
	}
	switch m.Type.Method {
	case stun.MethodBinding, stun.MethodAllocate, stun.MethodRefresh,
		stun.MethodCreatePermission, stun.MethodChannelBind:
	default:
		return true
	}
	client := o.ft.client
	now := s.now()
	if !s.allowRequest(client.Addr(), now) {
		s.refuseFrom(ReasonRate, "", client.Addr())
		return false
	}
	if m.Type.Method == stun.MethodBinding || !m.Contains(stun.AttrMessageIntegrity) {
		return true // pion answers STUN, and challenges with 401 and a nonce
	}
	var (
		username stun.Username
		realm    stun.Realm
		nonce    stun.Nonce
	)
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil || nonce.GetFrom(m) != nil {
		return true // pion: 400
	}
	reply := func(b []byte) { o.out.write(b) }
	unauthorized := func(r Reason, user string) bool {
		s.refuseFrom(r, user, client.Addr())
		reply(errorResponse(m, stun.CodeUnauthorized, nil, stun.NewRealm(s.realm), &nonce))
		return false
	}
	if realm.String() != s.realm {
		return unauthorized(ReasonAuth, "")
	}
	expiry, user, err := parseUsername(username.String())
	if err != nil {
		return unauthorized(ReasonAuth, "")
	}
	key, ok := s.verify(m, username.String())
	if !ok {
		return unauthorized(ReasonAuth, "")
	}
	ft := o.ft
	s.mu.Lock()
	a := s.allocs[ft]
	s.mu.Unlock()
	if a != nil && a.user.name != user {
		s.refuseFrom(ReasonWrongUser, user, client.Addr())
		reply(errorResponse(m, stun.CodeWrongCredentials, key))
		return false
	}
	// Expiry limits new allocations; an existing one may be refreshed with
	// the credentials that made it, so a call can outlast the TTL.
	if a == nil && expiry < now.Unix() {
		return unauthorized(ReasonExpired, user)
	}
	s.rememberKey(username.String(), key, now)

	switch m.Type.Method {
	case stun.MethodAllocate:
		if a != nil {
			return true // a retransmission (pion answers from its cache) or 437
		}
		if v, err := m.Get(stun.AttrRequestedTransport); err == nil && len(v) > 0 && v[0] != protoUDP {
			reply(errorResponse(m, stun.CodeUnsupportedTransProto, key))
			return false
		}
		if r := s.admit(o, user, now); r != "" {
			s.refuseFrom(r, user, client.Addr())
			code := stun.CodeAllocQuotaReached
			if r == ReasonCapacity {
				code = stun.CodeInsufficientCapacity
			}
			reply(errorResponse(m, code, key))
			return false
		}
	case stun.MethodCreatePermission, stun.MethodChannelBind:
		var (
			refused Reason
			peer    netip.AddrPort
			added   []netip.Addr // IP addresses without a permission yet
		)
		errStop := errors.New("stop")
		_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
			var pa stun.XORMappedAddress
			if pa.GetFromAs(m, stun.AttrXORPeerAddress) != nil {
				return errStop // malformed: pion answers 400
			}
			ip, ok := netip.AddrFromSlice(pa.IP)
			if !ok || pa.Port < 0 || pa.Port > 0xffff {
				return errStop
			}
			peer = netip.AddrPortFrom(ip, uint16(pa.Port))
			if r := s.pol.peer(ip, uint16(pa.Port), true); r != "" {
				refused = r
				return errStop
			}
			if ip = ip.Unmap(); a != nil && !a.permitted(ip) && !slices.Contains(added, ip) {
				added = append(added, ip)
			}
			return nil
		})
		if refused == "" && a != nil {
			_, bound := a.byPeer(netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port()))
			if len(*a.perms.Load())+len(added) > maxPeers ||
				m.Type.Method == stun.MethodChannelBind && !bound && len(*a.channels.Load()) >= maxPeers {
				refused = ReasonPeerQuota
			}
		}
		if refused != "" {
			s.refuseFrom(refused, user, client.Addr(), "peer", s.fmtAddrPort(peer))
			code := stun.CodeForbidden
			switch refused {
			case ReasonFamily:
				code = stun.CodePeerAddrFamilyMismatch
			case ReasonPeerQuota:
				code = stun.CodeInsufficientCapacity
			}
			reply(errorResponse(m, code, key))
			return false
		}
	}
	return true
}

// errorResponse builds an error response to req, with MESSAGE-INTEGRITY
// when key is not nil.
func errorResponse(req *stun.Message, code stun.ErrorCode, key []byte, extra ...stun.Setter) []byte {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.NewType(req.Type.Method, stun.ClassErrorResponse),
		code,
	}
	setters = append(setters, extra...)
	if key != nil {
		setters = append(setters, stun.MessageIntegrity(key))
	}
	setters = append(setters, stun.Fingerprint)
	res, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return res.Raw
}

// verify checks the request's MESSAGE-INTEGRITY against the current and
// previous secrets and returns the long-term key that matched.
func (s *Server) verify(m *stun.Message, username string) ([]byte, bool) {
	current, previous := s.secrets()
	for i := -1; i < len(previous); i++ {
		secret := current
		if i >= 0 {
			secret = previous[i]
		}
		if len(secret) == 0 {
			continue
		}
		key := longTermKey(username, s.realm, password(secret, username))
		if stun.MessageIntegrity(key).Check(m) == nil {
			return key, true
		}
	}
	return nil, false
}

// rememberKey keeps the key the gate verified, for pion's AuthHandler.
func (s *Server) rememberKey(username string, key []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[username] = keyEntry{key: key, used: now}
}

// authKey is pion's AuthHandler: every authenticated request reaching pion
// was verified by screen, which left the key that matched.
func (s *Server) authKey(username, realm string, _ net.Addr) ([]byte, bool) {
	if realm != s.realm {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[username]
	return e.key, ok
}

// permit is pion's PermissionHandler, behind the gate's own check: it sees
// only the peer's IP address.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	a, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	if r := s.pol.peer(a, 0, false); r != "" {
		s.refuseFrom(r, "", addrPort(client).Addr(), "peer", s.fmtAddr(a))
		return false
	}
	return true
}

// allowRequest takes a token from the source address's request bucket.
func (s *Server) allowRequest(ip netip.Addr, now time.Time) bool {
	if s.requestRate < 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	b := s.rates[ip]
	if b == nil {
		if len(s.rates) >= maxRateEntries {
			ip = netip.IPv6Unspecified() // one shared bucket for the overflow
			if b = s.rates[ip]; b != nil {
				return b.take(1, now)
			}
		}
		rate := float64(s.requestRate)
		b = newBucket(rate, 2*rate, now)
		s.rates[ip] = b
	}
	return b.take(1, now)
}

// admit counts an Allocate against the quotas, or says which it exceeds.
func (s *Server) admit(o origin, user string, now time.Time) Reason {
	ft := o.ft
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if s.closed {
		return ReasonCapacity
	}
	if p := s.pending[ft]; p != nil {
		if p.user.name == user {
			p.at = now // a retransmission
			return ""
		}
		s.dropPendingLocked(ft, p)
	}
	u := s.userLocked(user, now)
	ip := ft.client.Addr()
	switch {
	case s.maxUser > 0 && u.live+u.pending >= s.maxUser:
		return ReasonUserQuota
	case s.maxAddr > 0 && s.addrs[ip] >= s.maxAddr:
		return ReasonAddrQuota
	case s.total >= s.maxTotal:
		return ReasonCapacity
	}
	s.pending[ft] = &pendingAlloc{user: u, transport: o.transport, out: o.out, at: now}
	u.pending++
	s.addrs[ip]++
	s.total++
	return ""
}

func (s *Server) dropPendingLocked(ft fiveTuple, p *pendingAlloc) {
	delete(s.pending, ft)
	p.user.pending--
	s.releaseAddrLocked(ft.client.Addr())
}

func (s *Server) releaseAddrLocked(ip netip.Addr) {
	s.total--
	if s.addrs[ip]--; s.addrs[ip] <= 0 {
		delete(s.addrs, ip)
	}
}

// sweepLocked forgets what expired, at most every sweepEvery.
func (s *Server) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	for ft, p := range s.pending {
		if now.Sub(p.at) > pendingTTL {
			s.dropPendingLocked(ft, p)
		}
	}
	for name, u := range s.users {
		if u.live == 0 && u.pending == 0 && now.Sub(u.lastActive) > userIdle {
			delete(s.users, name)
		}
	}
	for k, e := range s.keys {
		if now.Sub(e.used) > keyIdle {
			delete(s.keys, k)
		}
	}
	for ip, b := range s.rates {
		if b.full(now) {
			delete(s.rates, ip)
		}
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// now is the gate's clock: the time, moved by tests through skew.
func (s *Server) now() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }
