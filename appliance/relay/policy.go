package relay

import (
	"net/netip"
	"slices"
)

// class is what an address is, as far as relaying to it is concerned.
type class uint8

const (
	classPublic class = iota
	classPrivate
	classLoopback
	classUnspecified
	classLinkLocal
	classMulticast
	classBroadcast
	classReserved
)

// refusal is the Reason for relaying to an address of each forbidden class.
var refusal = [...]Reason{
	classLoopback:    ReasonLoopback,
	classUnspecified: ReasonUnspecified,
	classLinkLocal:   ReasonLinkLocal,
	classMulticast:   ReasonMulticast,
	classBroadcast:   ReasonBroadcast,
	classReserved:    ReasonReserved,
}

type prefixClass struct {
	p netip.Prefix
	c class
}

// classes lists the special ranges, most specific first. Anything else is
// public.
var classes = []prefixClass{
	{netip.MustParsePrefix("255.255.255.255/32"), classBroadcast},
	{netip.MustParsePrefix("0.0.0.0/8"), classUnspecified}, // "this network"
	{netip.MustParsePrefix("127.0.0.0/8"), classLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), classLinkLocal}, // incl. 169.254.169.254
	{netip.MustParsePrefix("224.0.0.0/4"), classMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), classReserved},
	{netip.MustParsePrefix("192.0.0.0/24"), classReserved},    // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), classReserved},    // documentation
	{netip.MustParsePrefix("198.51.100.0/24"), classReserved}, // documentation
	{netip.MustParsePrefix("203.0.113.0/24"), classReserved},  // documentation
	{netip.MustParsePrefix("10.0.0.0/8"), classPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), classPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), classPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), classPrivate}, // CGNAT, tailnets
	{netip.MustParsePrefix("198.18.0.0/15"), classPrivate}, // benchmarking networks
	{netip.MustParsePrefix("::/128"), classUnspecified},
	{netip.MustParsePrefix("::1/128"), classLoopback},
	{netip.MustParsePrefix("fe80::/10"), classLinkLocal},
	{netip.MustParsePrefix("ff00::/8"), classMulticast},
	{netip.MustParsePrefix("fc00::/7"), classPrivate},  // unique local
	{netip.MustParsePrefix("fec0::/10"), classPrivate}, // site-local (deprecated)
	{netip.MustParsePrefix("100::/64"), classReserved}, // discard-only
	{netip.MustParsePrefix("2001:db8::/32"), classReserved},
}

// classify returns the class of a single address (no unwrapping).
func classify(a netip.Addr) class {
	a = a.WithZone("")
	for _, pc := range classes {
		if pc.p.Contains(a) {
			return pc.c
		}
	}
	return classPublic
}

// maxCandidates bounds what candidates returns: an IPv6 address and up to
// three IPv4 addresses embedded in it.
const maxCandidates = 4

// candidates returns the addresses a peer address stands for: the address
// itself with an IPv4-mapped form unmapped (first), then every IPv4 address
// embedded in it by a transition mechanism: IPv4-compatible (::a.b.c.d),
// SIIT (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96, and 64:ff9b:1::/48 at both
// the /96 and /48 positions), 6to4 (2002::/16), Teredo (2001::/32: server
// and de-obfuscated client) and ISATAP interface identifiers. A peer is
// allowed only if every candidate is (coturn CVE-2026-27624 relayed to
// ::ffff:127.0.0.1 because it checked the IPv6 form only).
func candidates(a netip.Addr) (c [maxCandidates]netip.Addr, n int) {
	a = a.WithZone("").Unmap()
	c[0], n = a, 1
	if !a.Is6() {
		return c, n
	}
	b := a.As16()
	add := func(x0, x1, x2, x3 byte) {
		if n < maxCandidates {
			c[n] = netip.AddrFrom4([4]byte{x0, x1, x2, x3})
			n++
		}
	}
	zero := func(from, to int) bool {
		for _, x := range b[from:to] {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case zero(0, 12): // IPv4-compatible, including :: and ::1
		add(b[12], b[13], b[14], b[15])
	case zero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0: // SIIT
		add(b[12], b[13], b[14], b[15])
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b: // NAT64
		add(b[12], b[13], b[14], b[15])
		if b[4] == 0 && b[5] == 1 { // local-use 64:ff9b:1::/48 (RFC 8215)
			add(b[6], b[7], b[9], b[10])
		}
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		add(b[2], b[3], b[4], b[5])
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo
		add(b[4], b[5], b[6], b[7])
		add(^b[12], ^b[13], ^b[14], ^b[15])
	}
	if (b[8] == 0 || b[8] == 2) && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe { // ISATAP
		add(b[12], b[13], b[14], b[15])
	}
	return c, n
}

// policy decides which peers a client may relay to. It is built once by New
// and read concurrently.
type policy struct {
	allow, deny        []netip.Prefix
	protectedPorts     []uint16
	protectedAddrPorts []netip.AddrPort
	openPorts          []uint16 // own UDP services open to relays (voice)
	// relayIPs are the addresses relays bind to and advertise: peers there
	// are other allocations of this server (relay-to-relay).
	relayIPs []netip.Addr
	// own are all of the appliance's addresses, relayIPs included.
	own []netip.Addr
	// broadcasts are the directed broadcast addresses of local networks.
	broadcasts  []netip.Addr
	isKnownPeer func(netip.Addr) bool // nil: none
	isRelayPort func(uint16) bool     // a live relay socket's port
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (p *policy) isOwn(a netip.Addr) bool { return slices.Contains(p.own, a) }

// open reports whether port on a is one of the appliance's own UDP
// services that relays may reach (Config.OpenPorts).
func (p *policy) open(a netip.Addr, port uint16) bool {
	return slices.Contains(p.openPorts, port) && (p.isOwn(a) || slices.Contains(p.relayIPs, a))
}

// protected reports whether port on a is one of the appliance's service
// ports: a configured address and port, or a configured port on any of the
// appliance's own, loopback or unspecified addresses.
func (p *policy) protected(a netip.Addr, port uint16) bool {
	if slices.Contains(p.protectedAddrPorts, netip.AddrPortFrom(a, port)) {
		return true
	}
	if p.open(a, port) || !slices.Contains(p.protectedPorts, port) {
		return false
	}
	return a.IsLoopback() || a.IsUnspecified() || p.isOwn(a) || slices.Contains(p.relayIPs, a)
}

// peer decides whether a client may relay to addr; port is checked too when
// hasPort (ChannelBind, and the address a CreatePermission names). It
// returns "" when allowed, else why not. Permissions are per IP address, so
// ports are checked again for each datagram by send.
func (p *policy) peer(addr netip.Addr, port uint16, hasPort bool) Reason {
	if !addr.IsValid() {
		return ReasonUnspecified
	}
	c, n := candidates(addr)
	cs := c[:n]
	for _, a := range cs {
		if inPrefixes(p.deny, a) {
			return ReasonDenied
		}
		if hasPort && p.protected(a, port) {
			return ReasonProtectedPort
		}
	}
	allowed := true
	for _, a := range cs {
		allowed = allowed && inPrefixes(p.allow, a)
	}
	if allowed {
		return ""
	}
	if n == 1 && slices.Contains(p.relayIPs, cs[0]) { // relay-to-relay
		if hasPort && !p.relayPort(port) && !p.open(cs[0], port) {
			return ReasonOwnAddress
		}
		return ""
	}
	for _, a := range cs {
		if r := refusal[classify(a)]; r != "" {
			return r
		}
		if slices.Contains(p.broadcasts, a) {
			return ReasonBroadcast
		}
	}
	for _, a := range cs {
		ownOpen := p.isOwn(a) && len(p.openPorts) > 0 && (!hasPort || p.open(a, port))
		if classify(a) == classPrivate && !ownOpen && (p.isKnownPeer == nil || !p.isKnownPeer(a)) {
			return ReasonPrivate
		}
		if hasPort && p.isOwn(a) && !p.relayPort(port) && !p.open(a, port) {
			return ReasonOwnAddress
		}
	}
	if cs[0].Is6() {
		return ReasonFamily // relays are IPv4
	}
	return ""
}

func (p *policy) relayPort(port uint16) bool { return p.isRelayPort != nil && p.isRelayPort(port) }

// send decides whether one datagram may go to ap, whose IP address already
// has a permission (so it passed peer). It refuses the appliance's service
// ports and, on the appliance's own addresses, every port but live relays.
// It runs for every relayed datagram.
func (p *policy) send(ap netip.AddrPort) Reason {
	a, port := ap.Addr().Unmap(), ap.Port()
	if !a.Is4() {
		return ReasonFamily
	}
	if p.protected(a, port) {
		return ReasonProtectedPort
	}
	if (p.isOwn(a) || slices.Contains(p.relayIPs, a)) && !p.relayPort(port) && !p.open(a, port) && !inPrefixes(p.allow, a) {
		return ReasonOwnAddress
	}
	return ""
}
