package relay

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var candidateTests = []struct {
	in   string
	want []string
}{
	{"1.2.3.4", []string{"1.2.3.4"}},
	{"::ffff:127.0.0.1", []string{"127.0.0.1"}},                                                              // IPv4-mapped
	{"::127.0.0.1", []string{"::7f00:1", "127.0.0.1"}},                                                       // IPv4-compatible
	{"::", []string{"::", "0.0.0.0"}},                                                                        // unspecified
	{"::1", []string{"::1", "0.0.0.1"}},                                                                      // loopback
	{"::ffff:0:a9fe:a9fe", []string{"::ffff:0:a9fe:a9fe", "169.254.169.254"}},                                // SIIT
	{"64:ff9b::7f00:1", []string{"64:ff9b::7f00:1", "127.0.0.1"}},                                            // NAT64
	{"64:ff9b:1:7f00:0:100:c0a8:101", []string{"64:ff9b:1:7f00:0:100:c0a8:101", "192.168.1.1", "127.0.0.1"}}, // local-use NAT64, both positions
	{"2002:7f00:1::1", []string{"2002:7f00:1::1", "127.0.0.1"}},                                              // 6to4
	{"2001:0:a9fe:a9fe::80ff:fefe", []string{"2001:0:a9fe:a9fe::80ff:fefe", "169.254.169.254", "127.0.1.1"}}, // Teredo server, client
	{"fe80::5efe:7f00:1", []string{"fe80::5efe:7f00:1", "127.0.0.1"}},                                        // ISATAP
	{"2606:4700::1111", []string{"2606:4700::1111"}},
	{"fe80::1%eth0", []string{"fe80::1"}},
}

func TestCandidates(t *testing.T) {
	for _, tt := range candidateTests {
		c, n := candidates(netip.MustParseAddr(tt.in))
		var got []string
		for _, a := range c[:n] {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("candidates(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzCandidates: unwrapping never panics, the first candidate is the
// address itself (unmapped, without zone) and the rest are IPv4; an
// address whose unwrapped forms include loopback is never a public peer.
func FuzzCandidates(f *testing.F) {
	for _, tt := range candidateTests {
		b := netip.MustParseAddr(tt.in).As16()
		f.Add(b[:])
	}
	p := &policy{}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		c, n := candidates(a)
		if n < 1 || n > maxCandidates || c[0] != a.Unmap() {
			t.Fatalf("candidates(%v) = %v (n=%d)", a, c, n)
		}
		loop := false
		for _, x := range c[1:n] {
			if !x.Is4() {
				t.Fatalf("candidates(%v) has non-IPv4 %v", a, x)
			}
		}
		for _, x := range c[:n] {
			loop = loop || x.IsLoopback()
		}
		if r := p.peer(a, 80, true); loop && r == "" {
			t.Fatalf("peer(%v) allowed, but it embeds a loopback address", a)
		}
	})
}

func TestPolicyPeer(t *testing.T) {
	known := netip.MustParseAddr("192.168.1.77")
	p := &policy{
		relayIPs:       []netip.Addr{netip.MustParseAddr("192.168.1.10")},
		own:            []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("203.0.114.5")},
		broadcasts:     []netip.Addr{netip.MustParseAddr("192.168.1.255")},
		protectedPorts: []uint16{8443, 3478},
		protectedAddrPorts: []netip.AddrPort{
			netip.MustParseAddrPort("100.100.1.2:443"),
		},
		deny:        []netip.Prefix{netip.MustParsePrefix("8.8.4.0/24")},
		isKnownPeer: func(a netip.Addr) bool { return a == known },
		isRelayPort: func(p uint16) bool { return p == 49170 },
	}
	tests := []struct {
		addr    string
		port    uint16
		hasPort bool
		want    Reason
	}{
		{"8.8.8.8", 53, true, ""},
		{"8.8.4.4", 53, true, ReasonDenied},
		{"127.0.0.1", 9, true, ReasonLoopback},
		{"127.8.9.10", 9, false, ReasonLoopback},
		{"::1", 9, true, ReasonLoopback},
		{"::ffff:127.0.0.1", 9, true, ReasonLoopback},
		{"::127.0.0.1", 9, true, ReasonLoopback},
		{"64:ff9b::7f00:1", 9, true, ReasonLoopback},
		{"2002:7f00:1::", 9, true, ReasonLoopback},
		{"0.0.0.0", 9, true, ReasonUnspecified},
		{"0.1.2.3", 9, true, ReasonUnspecified},
		{"::", 9, true, ReasonUnspecified},
		{"169.254.169.254", 80, true, ReasonLinkLocal},
		{"::ffff:169.254.169.254", 80, true, ReasonLinkLocal},
		{"fe80::1", 9, true, ReasonLinkLocal},
		{"224.0.0.251", 5353, true, ReasonMulticast},
		{"239.255.255.250", 1900, true, ReasonMulticast},
		{"ff02::fb", 5353, true, ReasonMulticast},
		{"255.255.255.255", 9, true, ReasonBroadcast},
		{"192.168.1.255", 9, true, ReasonBroadcast},
		{"240.0.0.1", 9, true, ReasonReserved},
		{"192.0.2.1", 9, true, ReasonReserved},
		{"10.0.0.5", 9, true, ReasonPrivate},
		{"172.16.0.1", 9, true, ReasonPrivate},
		{"192.168.1.50", 9, true, ReasonPrivate},
		{"100.64.0.1", 9, true, ReasonPrivate},
		{"100.100.1.2", 9, false, ReasonPrivate},
		{"fd00::1", 9, true, ReasonPrivate},
		{"::ffff:192.168.1.50", 9, true, ReasonPrivate},
		{"192.168.1.77", 9, true, ""}, // a live session
		{"::ffff:192.168.1.77", 9, true, ""},
		{"192.168.1.10", 49170, true, ""}, // relay to relay
		{"192.168.1.10", 0, false, ""},
		{"192.168.1.10", 22, true, ReasonOwnAddress},
		{"192.168.1.10", 8443, true, ReasonProtectedPort},
		{"203.0.114.5", 22, true, ReasonOwnAddress}, // a public address of the appliance
		{"203.0.114.5", 49170, true, ""},
		{"203.0.114.5", 0, false, ""},
		{"100.100.1.2", 443, true, ReasonProtectedPort},
		{"127.0.0.1", 8443, true, ReasonProtectedPort},
		{"2606:4700::1111", 443, true, ReasonFamily},
		{"2001:db8::1", 443, true, ReasonReserved},
	}
	for _, tt := range tests {
		if got := p.peer(netip.MustParseAddr(tt.addr), tt.port, tt.hasPort); got != tt.want {
			t.Errorf("peer(%s, %d, %v) = %q, want %q", tt.addr, tt.port, tt.hasPort, got, tt.want)
		}
	}

	// AllowPeers opens a class, but not a protected port.
	p.allow = loopback
	for _, tt := range []struct {
		addr string
		port uint16
		want Reason
	}{
		{"127.0.0.1", 9, ""},
		{"::ffff:127.0.0.1", 9, ""},
		{"2002:7f00:1::", 9, ReasonLoopback}, // the IPv6 address itself is not allowed
		{"127.0.0.1", 8443, ReasonProtectedPort},
		{"127.0.0.1", 3478, ReasonProtectedPort},
	} {
		if got := p.peer(netip.MustParseAddr(tt.addr), tt.port, true); got != tt.want {
			t.Errorf("with AllowPeers 127/8: peer(%s, %d) = %q, want %q", tt.addr, tt.port, got, tt.want)
		}
	}

	// OpenPorts (the voice port, here the HTTPS port's UDP twin) open only
	// that port, only on the appliance's own addresses.
	p.allow = nil
	p.openPorts = []uint16{8443}
	p.own = append(p.own, netip.MustParseAddr("10.9.9.9"))
	for _, tt := range []struct {
		addr    string
		port    uint16
		hasPort bool
		want    Reason
	}{
		{"192.168.1.10", 8443, true, ""},
		{"::ffff:192.168.1.10", 8443, true, ""},
		{"10.9.9.9", 8443, true, ""}, // own, not a relay address
		{"10.9.9.9", 0, false, ""},   // the datagrams' ports are checked by send
		{"10.9.9.9", 22, true, ReasonPrivate},
		{"192.168.1.10", 22, true, ReasonOwnAddress},
		{"192.168.1.50", 8443, true, ReasonPrivate}, // someone else's 8443
		{"127.0.0.1", 8443, true, ReasonProtectedPort},
		{"100.100.1.2", 443, true, ReasonProtectedPort},
	} {
		if got := p.peer(netip.MustParseAddr(tt.addr), tt.port, tt.hasPort); got != tt.want {
			t.Errorf("with OpenPorts 8443: peer(%s, %d, %v) = %q, want %q", tt.addr, tt.port, tt.hasPort, got, tt.want)
		}
	}
}

func TestPolicySend(t *testing.T) {
	p := &policy{
		relayIPs:       []netip.Addr{netip.MustParseAddr("192.168.1.10")},
		own:            []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("10.9.9.9")},
		protectedPorts: []uint16{8443},
		isRelayPort:    func(p uint16) bool { return p == 49170 },
	}
	for _, tt := range []struct {
		ap   string
		want Reason
	}{
		{"8.8.8.8:53", ""},
		{"192.168.1.50:5000", ""}, // permission checked the IP
		{"192.168.1.10:49170", ""},
		{"[::ffff:192.168.1.10]:49170", ""},
		{"192.168.1.10:22", ReasonOwnAddress},
		{"[::ffff:192.168.1.10]:22", ReasonOwnAddress},
		{"10.9.9.9:80", ReasonOwnAddress},
		{"192.168.1.10:8443", ReasonProtectedPort},
		{"127.0.0.1:8443", ReasonProtectedPort},
		{"[2606:4700::1111]:443", ReasonFamily},
	} {
		if got := p.send(netip.MustParseAddrPort(tt.ap)); got != tt.want {
			t.Errorf("send(%s) = %q, want %q", tt.ap, got, tt.want)
		}
	}

	p.openPorts = []uint16{8443}
	for _, tt := range []struct {
		ap   string
		want Reason
	}{
		{"192.168.1.10:8443", ""},
		{"10.9.9.9:8443", ""},
		{"10.9.9.9:80", ReasonOwnAddress},
		{"127.0.0.1:8443", ReasonProtectedPort},
	} {
		if got := p.send(netip.MustParseAddrPort(tt.ap)); got != tt.want {
			t.Errorf("with OpenPorts 8443: send(%s) = %q, want %q", tt.ap, got, tt.want)
		}
	}
}

// TestDefaultPolicyOnTheWire: with the default policy, CreatePermission
// and ChannelBind to every forbidden class are refused with 403 (443 for
// IPv6), over a real server; allowed peers get their permission.
func TestDefaultPolicyOnTheWire(t *testing.T) {
	relayIP := netip.MustParseAddr("127.0.0.2")
	httpPort := uint16(8443)
	session := netip.MustParseAddr("192.168.1.77")
	ts := newTestServer(t, Config{
		RelayIP:        relayIP,
		ProtectedPorts: []uint16{httpPort},
		IsKnownPeer:    func(a netip.Addr) bool { return a == session },
	}, serverOpts{})
	c := dialCreds(t, "udp", ts.creds(t, "mallory", time.Now()))
	relayed, err := c.allocate()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		peer string
		code int // 0: allowed
	}{
		{"loopback", "127.0.0.1:8080", 403},
		{"loopback, other address", "127.1.2.3:22", 403},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.1]:8080", 403},
		{"IPv6 loopback", "[::1]:8080", 403},
		{"IPv4-compatible loopback", "[::127.0.0.1]:8080", 403},
		{"NAT64 loopback", "[64:ff9b::7f00:1]:8080", 403},
		{"6to4 loopback", "[2002:7f00:1::]:8080", 403},
		{"unspecified", "0.0.0.0:8080", 403},
		{"link-local", "169.254.10.20:80", 403},
		{"metadata", "169.254.169.254:80", 403},
		{"IPv4-mapped metadata", "[::ffff:169.254.169.254]:80", 403},
		{"IPv6 link-local", "[fe80::1]:80", 403},
		{"multicast", "224.0.0.251:5353", 403},
		{"IPv6 multicast", "[ff02::fb]:5353", 403},
		{"broadcast", "255.255.255.255:9", 403},
		{"own HTTP port on the relay address", netip.AddrPortFrom(relayIP, httpPort).String(), 403},
		{"own HTTP port on loopback", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), httpPort).String(), 403},
		{"own TURN port", ts.udp, 403},
		{"non-relay port on the relay address", "127.0.0.2:22", 403},
		{"private, no session", "192.168.1.50:5000", 403},
		{"IPv4-mapped private, no session", "[::ffff:10.0.0.8]:5000", 403},
		{"CGNAT, no session", "100.64.3.4:5000", 403},
		{"ULA, no session", "[fd00::1]:5000", 403},
		{"public IPv6", "[2606:4700::1111]:443", 443},
		{"private with a live session", netip.AddrPortFrom(session, 5000).String(), 0},
		{"own relay", relayed.String(), 0},
		{"public", "8.8.8.8:3478", 0}, // a permission only; nothing is sent
	}
	ch := uint16(0x4000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := netip.MustParseAddrPort(tt.peer)
			if err := c.createPermission(peer); codeOf(err) != tt.code {
				t.Errorf("CreatePermission(%v) = %v, want code %d", peer, err, tt.code)
			}
			ch++
			if err := c.channelBind(ch, peer); codeOf(err) != tt.code {
				t.Errorf("ChannelBind(%v) = %v, want code %d", peer, err, tt.code)
			}
		})
	}
	// One forbidden peer among several refuses the whole request.
	if err := c.createPermission(netip.MustParseAddrPort("8.8.8.8:1"), netip.MustParseAddrPort("127.0.0.1:1")); codeOf(err) != 403 {
		t.Errorf("CreatePermission(public, loopback) = %v, want 403", err)
	}
	st := ts.Stats()
	for _, r := range []Reason{ReasonLoopback, ReasonUnspecified, ReasonLinkLocal, ReasonMulticast,
		ReasonBroadcast, ReasonProtectedPort, ReasonOwnAddress, ReasonPrivate, ReasonFamily} {
		if st.Refusals[r] == 0 {
			t.Errorf("Refusals[%s] = 0", r)
		}
	}
	if got := st.Allocations[0].Peers; got != 3 {
		t.Errorf("allocation has %d permitted peers, want 3 (session, own relay, public)", got)
	}
}
