package discovery

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// seedMessages are well-formed mDNS messages of every kind the responder
// and resolver meet, the fuzzers' starting points.
func seedMessages() []*dns.Msg {
	host, srv := "hearth.local.", "hearth._hearth._tcp.local."
	addr := []netip.Addr{netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("fd00::7")}
	var out []*dns.Msg
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeTXT} {
		out = append(out, query(question(host, qt)))
	}
	probe := query(question(host, dns.TypeANY), question(srv, dns.TypeANY))
	probe.Ns = append(addrRRs(host, addr, 120, false), srvRR(srv, "other.local.", 443, 120, false), txtRR(srv, []string{"v=1"}, 120, false))
	out = append(out, probe)
	known := query(question(host, dns.TypeA))
	known.Answer = addrRRs(host, addr, 120, false)
	out = append(out, known)
	qu := query(dns.Question{Name: host, Qtype: dns.TypeA, Qclass: dns.ClassINET | classTop})
	out = append(out, qu)
	resp := new(dns.Msg)
	resp.Response = true
	resp.Answer = append(addrRRs(host, addr, 120, true), nsecRR(host, []uint16{dns.TypeA, dns.TypeAAAA}))
	resp.Extra = []dns.RR{srvRR(srv, host, 8443, 3200, true)}
	out = append(out, resp)
	bye := new(dns.Msg)
	bye.Response = true
	bye.Answer = addrRRs(host, addr, 0, false)
	out = append(out, bye)
	return out
}

// fuzzSession is an announced responder on a fake link, driven by hand.
func fuzzSession(t testing.TB) (*session, *fakeConn) {
	var n fakeNet
	tr := n.join("10.0.0.1:5353")
	obs := n.join("10.0.0.9:5353")
	a, err := New(Config{Port: 8443, Interfaces: []net.Interface{fakeIface},
		Addrs:   func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil },
		publish: (&fakePublisher{}).publish})
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := a.addresses([]net.Interface{fakeIface})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(a, tr, []net.Interface{fakeIface}, addrs, 1)
	s.timer = time.NewTimer(time.Hour)
	t.Cleanup(func() { s.timer.Stop() })
	s.establish()
	obs.drain()
	return s, obs
}

func TestOffLinkUnicastIgnored(t *testing.T) {
	s, _ := fuzzSession(t)
	s.prefixes[fakeIface.Index] = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	b, err := query(question("hearth.local.", dns.TypeA)).Pack()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src     string
		unicast bool
		want    int
	}{
		{"10.0.0.9:40000", true, 1},      // a neighbour
		{"[fe80::9]:40000", true, 1},     // link-local is always on-link
		{"192.0.2.1:40000", true, 0},     // off-link, sent to our address
		{"192.0.2.1:40000", false, 1},    // sent to the group: link-scoped anyway
		{"[2001:db8::1]:40000", true, 0}, // off-link IPv6
	}
	for _, tt := range tests {
		var n fakeNet
		c := n.join(tt.src)
		s.t = n.join("10.0.0.1:5353")
		s.handle(packet{data: b, src: netip.MustParseAddrPort(tt.src), ifIndex: fakeIface.Index, unicast: tt.unicast})
		if got := len(c.drain()); got != tt.want {
			t.Errorf("query from %s (unicast %v): %d replies, want %d", tt.src, tt.unicast, got, tt.want)
		}
	}
}

// FuzzHandle feeds arbitrary datagrams to the responder: it must not panic,
// and whatever it sends must be a well-formed mDNS response.
func FuzzHandle(f *testing.F) {
	for _, m := range seedMessages() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c}, true) // a name pointing at itself
	f.Fuzz(func(t *testing.T, b []byte, multicast bool) {
		s, obs := fuzzSession(t)
		src := netip.MustParseAddrPort("10.0.0.9:5353")
		if !multicast {
			src = netip.MustParseAddrPort("10.0.0.9:40000")
		}
		s.lastMcast = map[rateKey]time.Time{} // answer every time
		s.handle(packet{data: b, src: src, ifIndex: fakeIface.Index})
		s.handle(packet{data: b, src: netip.MustParseAddrPort("10.0.0.1:5353"), ifIndex: fakeIface.Index})
		for _, r := range obs.drain() {
			if !r.msg.Response && len(r.msg.Ns) == 0 {
				t.Fatalf("sent a query that is not a probe: %v", r.msg)
			}
			if r.msg.Response && len(r.msg.Answer) == 0 {
				t.Fatalf("sent a response with no answer: %v", r.msg)
			}
		}
	})
}

// FuzzAnswerAddrs feeds arbitrary datagrams to the resolver's parser.
func FuzzAnswerAddrs(f *testing.F) {
	for _, m := range seedMessages() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, a := range answerAddrs(b, 0, "hearth.local.") {
			if !a.IsValid() || a.Zone() != "" {
				t.Fatalf("answerAddrs returned %v", a)
			}
		}
	})
}
