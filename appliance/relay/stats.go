package relay

import (
	"cmp"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Reason says why the relay refused something. Reasons label the refusal
// counters in [Stats] and the refusal log lines.
type Reason string

// Reasons for refusals.
const (
	// ReasonAuth: a bad signature, a secret that is neither current nor
	// previous, a malformed username or a foreign realm (401).
	ReasonAuth Reason = "auth"
	// ReasonExpired: an allocation requested with expired credentials (401).
	ReasonExpired Reason = "expired"
	// ReasonWrongUser: a request on an allocation made by another user (441).
	ReasonWrongUser Reason = "wrong-user"
	// ReasonUserQuota: the user holds Config.MaxAllocationsPerUser (486).
	ReasonUserQuota Reason = "user-quota"
	// ReasonAddrQuota: the source address holds Config.MaxAllocationsPerAddr (486).
	ReasonAddrQuota Reason = "address-quota"
	// ReasonCapacity: the server holds Config.MaxAllocations (508).
	ReasonCapacity Reason = "capacity"
	// ReasonBandwidth: a datagram dropped over the user's bandwidth quota.
	ReasonBandwidth Reason = "bandwidth"
	// ReasonRate: a request dropped over the source address's request rate.
	ReasonRate Reason = "rate"
	// ReasonPeerQuota: a permission or channel beyond the 64 one allocation
	// may hold (508).
	ReasonPeerQuota Reason = "peer-quota"

	// Peer refusals: a permission or channel refused (403), or a relayed
	// datagram dropped.
	ReasonLoopback      Reason = "peer-loopback"
	ReasonUnspecified   Reason = "peer-unspecified"
	ReasonLinkLocal     Reason = "peer-link-local"
	ReasonMulticast     Reason = "peer-multicast"
	ReasonBroadcast     Reason = "peer-broadcast"
	ReasonReserved      Reason = "peer-reserved"
	ReasonPrivate       Reason = "peer-private" // private or CGNAT, not a live session
	ReasonProtectedPort Reason = "peer-protected-port"
	ReasonOwnAddress    Reason = "peer-own-address" // the appliance, not a relay port
	ReasonDenied        Reason = "peer-denied"      // Config.DenyPeers
	ReasonFamily        Reason = "peer-family"      // IPv6 peer; relays are IPv4 (443)
)

// Stats is a snapshot of the relay. Byte counts are relayed payload (what
// peers and clients exchange, without TURN framing).
type Stats struct {
	// Allocations are the live allocations, oldest first.
	Allocations []AllocationStats
	// Users has one entry per user with a live allocation, or one that
	// ended less than an hour ago, by name.
	Users []UserStats
	// AllocationsTotal counts allocations created since New.
	AllocationsTotal uint64
	// BytesIn counts bytes received from peers (relayed to clients) since
	// New; BytesOut bytes sent to peers (relayed from clients).
	BytesIn, BytesOut uint64
	// Refusals counts refusals since New by reason; reasons never seen are
	// absent (see Reasons).
	Refusals map[Reason]uint64
}

// AllocationStats describes one live allocation.
type AllocationStats struct {
	User      string         // the user ID from the credentials
	Client    netip.AddrPort // the client's address as the server sees it
	Relay     netip.AddrPort // the relayed address handed to the client
	Transport string         // how the client reaches the server: "udp", "tcp" or "tls"
	Started   time.Time
	Peers     int    // IP addresses with a permission
	BytesIn   uint64 // from peers
	BytesOut  uint64 // to peers
}

// UserStats sums a user's relaying.
type UserStats struct {
	User        string
	Allocations int    // live
	BytesIn     uint64 // from peers, since New
	BytesOut    uint64 // to peers, since New
	Throttled   uint64 // datagrams dropped over the bandwidth quota
}

// Stats returns a snapshot for metrics and the admin UI.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		AllocationsTotal: s.created,
		BytesIn:          s.closedIn,
		BytesOut:         s.closedOut,
		Refusals:         map[Reason]uint64{},
	}
	for i, r := range allReasons {
		if n := s.count[i].Load(); n > 0 {
			st.Refusals[r] = n
		}
	}
	users := map[string]*UserStats{}
	for name, u := range s.users {
		us := &UserStats{User: name, Allocations: u.live, BytesIn: u.closedIn, BytesOut: u.closedOut,
			Throttled: u.throttled.Load()}
		users[name] = us
	}
	for _, a := range s.allocs {
		in, out := a.bytesIn.Load(), a.bytesOut.Load()
		st.BytesIn += in
		st.BytesOut += out
		if us := users[a.user.name]; us != nil {
			us.BytesIn += in
			us.BytesOut += out
		}
		st.Allocations = append(st.Allocations, AllocationStats{
			User: a.user.name, Client: a.client, Relay: a.relay, Transport: a.transport,
			Started: a.started, Peers: len(*a.perms.Load()), BytesIn: in, BytesOut: out,
		})
	}
	slices.SortFunc(st.Allocations, func(x, y AllocationStats) int {
		return cmp.Or(x.Started.Compare(y.Started), cmp.Compare(x.Relay.Port(), y.Relay.Port()))
	})
	for _, us := range users {
		st.Users = append(st.Users, *us)
	}
	slices.SortFunc(st.Users, func(x, y UserStats) int { return cmp.Compare(x.User, y.User) })
	return st
}

// allocation is the relay's record of one of pion's allocations. pion
// keeps the control plane (permissions, channels, lifetimes); the relay
// mirrors what it needs from pion's events to carry ChannelData itself.
type allocation struct {
	user      *userState
	client    netip.AddrPort
	relay     netip.AddrPort
	transport string
	stream    bool
	started   time.Time
	conn      *relayConn                   // the relay socket
	out       clientOut                    // to the client; nil: only through pion
	direct    bool                         // out never blocks: the poller may write to it
	perms     atomic.Pointer[[]netip.Addr] // copy on write
	channels  atomic.Pointer[[]channel]    // copy on write
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
}

// channel is a channel binding: ChannelData number to a peer.
type channel struct {
	number uint16
	peer   netip.AddrPort
}

func (a *allocation) permitted(ip netip.Addr) bool {
	return slices.Contains(*a.perms.Load(), ip)
}

func (a *allocation) byNumber(n uint16) (netip.AddrPort, bool) {
	for _, c := range *a.channels.Load() {
		if c.number == n {
			return c.peer, true
		}
	}
	return netip.AddrPort{}, false
}

func (a *allocation) byPeer(peer netip.AddrPort) (uint16, bool) {
	for _, c := range *a.channels.Load() {
		if c.peer == peer {
			return c.number, true
		}
	}
	return 0, false
}
