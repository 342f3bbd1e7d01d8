package relay

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"
)

// pion's allocation events keep the relay's records: who owns which relay,
// quota counts, and each allocation's permitted peers.

func (s *Server) onAllocationCreated(src, dst net.Addr, _, username, _ string, relayAddr net.Addr, _ int) {
	ft := newFiveTuple(src, dst)
	relay := addrPort(relayAddr)
	_, user, err := parseUsername(username)
	if err != nil {
		user = username // unreachable: screen verified it
	}
	now := time.Now()
	s.mu.Lock()
	var (
		u   *userState
		out clientOut
	)
	transport := "udp"
	if ft.stream {
		transport = "tcp"
	}
	if p := s.pending[ft]; p != nil {
		delete(s.pending, ft)
		u, transport, out = p.user, p.transport, p.out
		u.pending--
	} else {
		u = s.userLocked(user, now)
		s.addrs[ft.client.Addr()]++
		s.total++
	}
	u.live++
	u.lastActive = now
	a := &allocation{user: u, client: ft.client, relay: relay, transport: transport, stream: ft.stream,
		started: now, out: out, conn: s.relays[relay.Port()]}
	_, a.direct = out.(rawOut)
	a.perms.Store(&[]netip.Addr{})
	a.channels.Store(&[]channel{})
	if old := s.allocs[ft]; old != nil { // unreachable: pion refuses a taken 5-tuple
		s.forgetLocked(ft, old, now)
	}
	s.allocs[ft] = a
	s.created++
	if a.conn != nil {
		a.conn.alloc.Store(a)
	}
	s.publishLocked()
	s.mu.Unlock()
	s.log.Debug("allocation created", "user", user, "client", s.fmtAddr(ft.client.Addr()), "relay", relay,
		"transport", transport)
}

func (s *Server) onAllocationDeleted(src, dst net.Addr, _, _, _ string) {
	ft := newFiveTuple(src, dst)
	now := time.Now()
	s.mu.Lock()
	a := s.allocs[ft]
	if a != nil {
		s.forgetLocked(ft, a, now)
	}
	s.mu.Unlock()
	if a != nil {
		s.log.Debug("allocation deleted", "user", a.user.name, "relay", a.relay,
			"bytes_in", a.bytesIn.Load(), "bytes_out", a.bytesOut.Load(), "duration", now.Sub(a.started).Round(time.Second))
	}
}

// forgetLocked drops a live allocation's record, keeping its byte counts
// in the totals. s.mu must be held.
func (s *Server) forgetLocked(ft fiveTuple, a *allocation, now time.Time) {
	delete(s.allocs, ft)
	s.publishLocked()
	in, out := a.bytesIn.Load(), a.bytesOut.Load()
	s.closedIn += in
	s.closedOut += out
	a.user.closedIn += in
	a.user.closedOut += out
	a.user.live--
	a.user.lastActive = now
	s.releaseAddrLocked(ft.client.Addr())
}

func (s *Server) onPermissionCreated(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
	s.updatePerms(src, dst, peer, true)
}

func (s *Server) onPermissionDeleted(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
	s.updatePerms(src, dst, peer, false)
}

// updatePerms mirrors pion's permissions (per IP address) so the relay
// socket can drop datagrams from peers without one before they count
// against the user's bandwidth.
func (s *Server) updatePerms(src, dst net.Addr, peer net.IP, add bool) {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return
	}
	ip = ip.Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.allocs[newFiveTuple(src, dst)]
	if a == nil {
		return
	}
	old := *a.perms.Load()
	i := slices.Index(old, ip)
	switch {
	case add && i < 0:
		next := append(slices.Clone(old), ip)
		a.perms.Store(&next)
	case !add && i >= 0:
		next := slices.Delete(slices.Clone(old), i, i+1)
		a.perms.Store(&next)
	}
}

// publishLocked publishes the allocations for lock-free lookup by the
// ChannelData path. s.mu must be held.
func (s *Server) publishLocked() {
	m := maps.Clone(s.allocs)
	s.fast.Store(&m)
}

func (s *Server) onChannelCreated(src, dst net.Addr, _, _, _ string, _, peer net.Addr, number uint16) {
	s.updateChannels(src, dst, channel{number: number, peer: addrPort(peer)}, true)
}

func (s *Server) onChannelDeleted(src, dst net.Addr, _, _, _ string, _, peer net.Addr, number uint16) {
	s.updateChannels(src, dst, channel{number: number, peer: addrPort(peer)}, false)
}

// updateChannels mirrors pion's channel bindings, which the relay uses to
// carry ChannelData.
func (s *Server) updateChannels(src, dst net.Addr, ch channel, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.allocs[newFiveTuple(src, dst)]
	if a == nil {
		return
	}
	old := *a.channels.Load()
	next := slices.DeleteFunc(slices.Clone(old), func(c channel) bool { return c.number == ch.number || c.peer == ch.peer })
	if add {
		next = append(next, ch)
	}
	a.channels.Store(&next)
}
