package discovery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
)

// settle lets the announcers probe and announce (3 probes 250 ms apart
// after up to 250 ms, then two announcements 1 s apart).
const settle = 3 * time.Second

func query(qs ...dns.Question) *dns.Msg {
	m := new(dns.Msg)
	m.Question = qs
	return m
}

func question(name string, qtype uint16) dns.Question {
	return dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
}

// records lists a message's answer and additional records as "NAME TYPE
// TTL DATA" with the class's top bit shown as "flush".
func records(rrs ...[]dns.RR) []string {
	var out []string
	for _, sec := range rrs {
		for _, rr := range sec {
			h := rr.Header()
			s := strings.ToLower(h.Name) + " " + dns.TypeToString[h.Rrtype] + " " + strconv.FormatUint(uint64(h.Ttl), 10) + " " + strings.TrimSpace(strings.TrimPrefix(rr.String(), h.String()))
			if h.Class&classTop != 0 {
				s += " flush"
			}
			out = append(out, s)
		}
	}
	return out
}

func TestProbeAnnounceAndAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		obs := n.join("10.0.0.9:5353")
		a := n.start(t, "Hearth", "10.0.0.1")
		time.Sleep(settle)

		// Three probes, then two announcements, in that order.
		var kinds []string
		for _, r := range obs.drain() {
			switch {
			case !r.msg.Response && len(r.msg.Ns) > 0:
				kinds = append(kinds, "probe")
				if got := records(r.msg.Ns); !slices.Contains(got, "hearth.local. A 120 10.0.0.1") ||
					!slices.Contains(got, "hearth._hearth._tcp.local. SRV 3200 0 0 8443 hearth.local.") {
					t.Errorf("probe authority = %q, want the A record and the SRV", got)
				}
				if len(r.msg.Question) != 3 || r.msg.Question[0].Qtype != dns.TypeANY {
					t.Errorf("probe questions = %v, want ANY for the host and both instances", r.msg.Question)
				}
			case r.msg.Response:
				kinds = append(kinds, "announce")
				if got, want := records(r.msg.Answer), []string{"hearth.local. A 120 10.0.0.1 flush"}; !slices.Equal(got, want) {
					t.Errorf("announcement = %q, want %q", got, want)
				}
			}
		}
		if want := []string{"probe", "probe", "probe", "announce", "announce"}; !slices.Equal(kinds, want) {
			t.Fatalf("sent %v, want %v", kinds, want)
		}
		if a.Name() != "hearth" {
			t.Fatalf("Name() = %q, want hearth", a.Name())
		}
		st := a.Status()
		if st.State != StateAnnounced || st.Host != "hearth.local" || !slices.Equal(st.Addrs, []netip.Addr{netip.MustParseAddr("10.0.0.1")}) ||
			st.LastError != "" || !slices.Equal(st.Services, []string{"hearth._hearth._tcp.local", "hearth._https._tcp.local"}) {
			t.Fatalf("Status() = %+v", st)
		}
		if got := a.pub.events(); !slices.Equal(got, []string{"+hearth"}) {
			t.Fatalf("published %v, want [+hearth]", got)
		}
		p := a.pub.live["hearth"]
		if p.host != "hearth.local." || p.port != 8443 || len(p.services) != 2 ||
			!slices.Equal(p.services[0].txt, []string{"v=test", "https=8443", "path=/"}) || p.services[1].typ != "_https._tcp" {
			t.Fatalf("publication = %+v", p)
		}
	})
}

// established runs an announcer named hearth at 10.0.0.1 past probing, with
// an observer on port 5353 and a legacy querier on port 40000.
func established(t *testing.T) (obs, legacy *fakeConn) {
	var n fakeNet
	obs = n.join("10.0.0.9:5353")
	legacy = n.join("10.0.0.9:40000")
	n.start(t, "hearth", "10.0.0.1")
	time.Sleep(settle + answerInterval) // past the multicast rate limit too
	obs.drain()
	return obs, legacy
}

func TestAnswers(t *testing.T) {
	srv := "hearth._hearth._tcp.local."
	tests := []struct {
		name   string
		legacy bool // ask from port 40000 instead of 5353
		query  *dns.Msg
		// want is the answer and additional records of the one reply,
		// nil for no reply.
		want []string
	}{
		{name: "A", query: query(question("hearth.local.", dns.TypeA)),
			want: []string{"hearth.local. A 120 10.0.0.1 flush", "hearth.local. NSEC 120 hearth.local. A flush"}},
		{name: "case-insensitive ANY", query: query(question("HEARTH.local.", dns.TypeANY)),
			want: []string{"hearth.local. A 120 10.0.0.1 flush"}},
		{name: "AAAA denied with NSEC", query: query(question("hearth.local.", dns.TypeAAAA)),
			want: []string{"hearth.local. NSEC 120 hearth.local. A flush", "hearth.local. A 120 10.0.0.1 flush"}},
		{name: "known answer suppressed", query: func() *dns.Msg {
			m := query(question("hearth.local.", dns.TypeA))
			m.Answer = addrRRs("hearth.local.", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, 100, false)
			return m
		}()},
		{name: "known answer near expiry is refreshed", query: func() *dns.Msg {
			m := query(question("hearth.local.", dns.TypeA))
			m.Answer = addrRRs("hearth.local.", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, 30, false)
			return m
		}(), want: []string{"hearth.local. A 120 10.0.0.1 flush", "hearth.local. NSEC 120 hearth.local. A flush"}},
		{name: "other host", query: query(question("other.local.", dns.TypeA))},
		{name: "service queries are zeroconf's", query: query(question(srv, dns.TypeSRV))},
		{name: "class CHAOS", query: query(dns.Question{Name: "hearth.local.", Qtype: dns.TypeA, Qclass: dns.ClassCHAOS})},
		{name: "probe for the host name is defended", query: func() *dns.Msg {
			m := query(question("hearth.local.", dns.TypeANY))
			m.Ns = addrRRs("hearth.local.", []netip.Addr{netip.MustParseAddr("10.0.0.7")}, 120, false)
			return m
		}(), want: []string{"hearth.local. A 120 10.0.0.1 flush"}},
		{name: "probe for an instance is defended", query: func() *dns.Msg {
			m := query(question(srv, dns.TypeANY))
			m.Ns = []dns.RR{srvRR(srv, "other.local.", 443, 120, false)}
			return m
		}(), want: []string{srv + " SRV 3200 0 0 8443 hearth.local. flush", srv + ` TXT 3200 "v=test" "https=8443" "path=/" flush`}},
		{name: "probe with our own records is our echo", query: func() *dns.Msg {
			m := query(question(srv, dns.TypeANY))
			m.Ns = []dns.RR{srvRR(srv, "hearth.local.", 8443, serviceTTL, false), txtRR(srv, []string{"v=test", "https=8443", "path=/"}, serviceTTL, false)}
			return m
		}()},
		{name: "response is no query", query: func() *dns.Msg {
			m := query(question("hearth.local.", dns.TypeA))
			m.Response = true
			return m
		}()},
		{name: "non-zero opcode ignored", query: func() *dns.Msg {
			m := query(question("hearth.local.", dns.TypeA))
			m.Opcode = dns.OpcodeUpdate
			return m
		}()},
		{name: "legacy unicast query", legacy: true, query: func() *dns.Msg {
			m := query(question("hearth.local.", dns.TypeA))
			m.Id = 4242
			return m
		}(), want: []string{"hearth.local. A 10 10.0.0.1", "hearth.local. NSEC 10 hearth.local. A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				obs, legacy := established(t)
				from := obs
				if tt.legacy {
					from = legacy
				}
				from.send(t, tt.query)
				time.Sleep(10 * time.Millisecond)
				var got []received
				for _, r := range from.drain() {
					if r.msg.Response && r.src.Addr() == netip.MustParseAddr("10.0.0.1") {
						got = append(got, r)
					}
				}
				if tt.want == nil {
					if len(got) != 0 {
						t.Fatalf("answered %q, want no answer", records(got[0].msg.Answer, got[0].msg.Extra))
					}
					return
				}
				if len(got) != 1 {
					t.Fatalf("got %d replies, want 1", len(got))
				}
				m := got[0].msg
				if g := records(m.Answer, m.Extra); !slices.Equal(g, tt.want) {
					t.Errorf("reply = %q, want %q", g, tt.want)
				}
				if tt.legacy && (m.Id != tt.query.Id || len(m.Question) != 1 || m.Question[0] != tt.query.Question[0]) {
					t.Errorf("legacy reply id %d questions %v, want id %d and the question echoed", m.Id, m.Question, tt.query.Id)
				}
			})
		})
	}
}

func TestMalformedPacketsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs, legacy := established(t)
		for _, b := range [][]byte{nil, {0}, []byte("not dns at all"), make([]byte, 12), {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c}} {
			_ = obs.Multicast(b, 0)
		}
		time.Sleep(10 * time.Millisecond)
		legacy.send(t, query(question("hearth.local.", dns.TypeA)))
		time.Sleep(10 * time.Millisecond)
		if got := legacy.drain(); len(got) != 1 {
			t.Fatalf("after garbage, a query got %d replies, want 1", len(got))
		}
	})
}

func TestQUQueryGetsUnicast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		n.start(t, "hearth", "10.0.0.1")
		time.Sleep(settle)
		asker := n.join("10.0.0.9:5353")
		other := n.join("10.0.0.8:5353")
		asker.send(t, query(dns.Question{Name: "hearth.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET | classTop}))
		time.Sleep(10 * time.Millisecond)
		responses := func(rs []received) (n int) {
			for _, r := range rs {
				if r.msg.Response {
					n++
				}
			}
			return n
		}
		if a, o := responses(asker.drain()), responses(other.drain()); a != 1 || o != 0 {
			t.Fatalf("QU reply reached asker %d times and a bystander %d times, want 1 and 0", a, o)
		}
	})
}

func TestConflictPicksNextName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		first := n.start(t, "hearth", "10.0.0.1")
		time.Sleep(settle)
		second := n.start(t, "hearth", "10.0.0.2")
		time.Sleep(settle)
		third := n.start(t, "hearth", "10.0.0.3")
		time.Sleep(2 * settle)
		for _, tt := range []struct {
			a         *testAnnouncer
			name      string
			conflicts int
		}{{first, "hearth", 0}, {second, "hearth-2", 1}, {third, "hearth-3", 2}} {
			if got := tt.a.Name(); got != tt.name {
				t.Errorf("Name() = %q, want %q", got, tt.name)
			}
			st := tt.a.Status()
			if st.Conflicts != tt.conflicts || st.State != StateAnnounced || st.Host != tt.name+".local" {
				t.Errorf("%s: Status() = %+v, want %d conflicts, announced", tt.name, st, tt.conflicts)
			}
			if got := tt.a.pub.events(); !slices.Equal(got, []string{"+" + tt.name}) {
				t.Errorf("%s: published %v, want only the name won", tt.name, got)
			}
		}
	})
}

func TestSimultaneousProbesTieBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		a := n.start(t, "hearth", "10.0.0.1")
		b := n.start(t, "hearth", "10.0.0.2")
		time.Sleep(3 * settle)
		got := []string{a.Name(), b.Name()}
		// §8.2: the lexicographically later data wins the tie: 10.0.0.2.
		if want := []string{"hearth-2", "hearth"}; !slices.Equal(got, want) {
			t.Fatalf("names = %v, want %v", got, want)
		}
	})
}

func TestGoodbyeOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		obs := n.join("10.0.0.9:5353")
		a := n.start(t, "hearth", "10.0.0.1")
		time.Sleep(settle)
		obs.drain()
		if err := a.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		if err := <-a.done; err != nil {
			t.Fatalf("Run() = %v, want nil after Close", err)
		}
		var got []string
		for _, r := range obs.drain() {
			got = append(got, records(r.msg.Answer)...)
		}
		if want := []string{"hearth.local. A 0 10.0.0.1"}; !slices.Equal(got, want) {
			t.Fatalf("goodbye = %q, want %q", got, want)
		}
		if ev := a.pub.events(); !slices.Equal(ev, []string{"+hearth", "-hearth"}) {
			t.Fatalf("publisher saw %v, want the services withdrawn", ev)
		}
		if st := a.Status(); st.State != StateStopped || a.Name() != "" {
			t.Fatalf("after Close: Status() = %+v, Name() = %q", st, a.Name())
		}
		if err := a.Close(); err != nil {
			t.Fatalf("second Close() = %v", err)
		}
		if err := a.Run(t.Context()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Run after Close = %v, want ErrClosed", err)
		}
	})
}

func TestReannounceOnAddressChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		obs := n.join("10.0.0.9:5353")
		a := n.start(t, "hearth", "10.0.0.1")
		time.Sleep(settle)
		obs.drain()

		a.setAddrs("10.0.0.1", "fd00::1")
		time.Sleep(1100 * time.Millisecond) // one poll
		var got []string
		for _, r := range obs.drain() {
			got = append(got, records(r.msg.Answer)...)
		}
		if want := []string{"hearth.local. A 120 10.0.0.1 flush", "hearth.local. AAAA 120 fd00::1 flush"}; len(got) < 2 || !slices.Equal(got[:2], want) {
			t.Fatalf("after an address was added, sent %q, want %q", got, want)
		}

		time.Sleep(2 * time.Second) // the second announcement
		obs.drain()
		a.setAddrs("fd00::1")
		time.Sleep(1100 * time.Millisecond)
		got = nil
		for _, r := range obs.drain() {
			got = append(got, records(r.msg.Answer)...)
		}
		if want := []string{"hearth.local. A 0 10.0.0.1", "hearth.local. AAAA 120 fd00::1 flush"}; len(got) < 2 || !slices.Equal(got[:2], want) {
			t.Fatalf("after an address was removed, sent %q, want goodbye then %q", got, want)
		}
		time.Sleep(settle)
		if a.Name() != "hearth" || a.Status().Conflicts != 0 {
			t.Fatalf("after the change: Name() = %q, Status() = %+v; our own echoes are no conflict", a.Name(), a.Status())
		}
		if st := a.Status(); !slices.Equal(st.Addrs, []netip.Addr{netip.MustParseAddr("fd00::1")}) {
			t.Fatalf("Status().Addrs = %v, want [fd00::1]", st.Addrs)
		}
		// Services published with injected addresses are redone with them.
		if ev := a.pub.events(); !slices.Equal(ev, []string{"+hearth", "-hearth", "+hearth", "-hearth", "+hearth"}) {
			t.Fatalf("publisher saw %v", ev)
		}
	})
}

func TestNoInterfaceOrAddressKeepsTrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		a := n.start(t, "hearth", "10.0.0.1", func(c *Config) { c.Interfaces = []net.Interface{} })
		time.Sleep(settle)
		st := a.Status()
		if st.State != StateWaiting || !strings.Contains(st.LastError, "no multicast-capable network interface") || a.Name() != "" {
			t.Fatalf("without interfaces: Status() = %+v, Name() = %q", st, a.Name())
		}

		b := n.start(t, "other", "10.0.0.2")
		b.setAddrs()
		time.Sleep(settle)
		if st := b.Status(); st.State != StateWaiting || !strings.Contains(st.LastError, ErrNoAddress.Error()) {
			t.Fatalf("without addresses: Status() = %+v", st)
		}
		b.setAddrs("10.0.0.2")
		time.Sleep(settle)
		if st := b.Status(); st.State != StateAnnounced || st.LastError != "" || b.Name() != "other" {
			t.Fatalf("once an address came: Status() = %+v", st)
		}
		a.Close()
		if err := <-a.done; err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	})
}

func TestAnnouncedNameReclaimedByAnother(t *testing.T) {
	// A host that was away (a partition) comes back announcing our name:
	// we probe again, and the one that answers the probe keeps the name.
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		a := n.start(t, "hearth", "10.0.0.1")
		time.Sleep(settle)
		intruder := n.join("10.0.0.5:5353")
		m := new(dns.Msg)
		m.Response = true
		m.Answer = addrRRs("hearth.local.", []netip.Addr{netip.MustParseAddr("10.0.0.5")}, 120, true)
		intruder.send(t, m)
		time.Sleep(10 * time.Millisecond)
		// It now probes; the intruder answers the probe, as a holder would.
		for range 3 {
			intruder.send(t, m)
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(settle)
		if a.Name() != "hearth-2" {
			t.Fatalf("Name() = %q, want hearth-2 after the other host defended hearth", a.Name())
		}
	})
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(Config) bool
	}{
		{name: "defaults", cfg: Config{Port: 8443}, check: func(c Config) bool {
			return c.Name == DefaultName && c.Version == DefaultVersion && c.PollInterval == DefaultPollInterval
		}},
		{name: "upper case is lowered", cfg: Config{Name: "Kitchen-Hearth", Port: 443}, check: func(c Config) bool { return c.Name == "kitchen-hearth" }},
		{name: "no port", cfg: Config{}, wantErr: "port 0"},
		{name: "port too big", cfg: Config{Port: 70000}, wantErr: "port 70000"},
		{name: "dot in name", cfg: Config{Name: "hearth.local", Port: 1}, wantErr: "mdns name"},
		{name: "leading hyphen", cfg: Config{Name: "-hearth", Port: 1}, wantErr: "mdns name"},
		{name: "space", cfg: Config{Name: "my hearth", Port: 1}, wantErr: "mdns name"},
		{name: "too long", cfg: Config{Name: strings.Repeat("a", MaxNameLen+1), Port: 1}, wantErr: "mdns name"},
		{name: "negative poll", cfg: Config{Port: 1, PollInterval: -time.Second}, wantErr: "poll interval"},
		{name: "interface without index", cfg: Config{Port: 1, Interfaces: []net.Interface{{Name: "eth0"}}}, wantErr: "no index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%+v) = %v, want error containing %q", tt.cfg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%+v) = %v", tt.cfg, err)
			}
			if !tt.check(a.cfg) {
				t.Fatalf("New(%+v) config = %+v", tt.cfg, a.cfg)
			}
			if st := a.Status(); st.State != StateIdle || a.Name() != "" {
				t.Fatalf("before Run: Status() = %+v, Name() = %q", st, a.Name())
			}
			if err := a.Close(); err != nil {
				t.Fatalf("Close() on an idle announcer = %v", err)
			}
		})
	}
}

func TestCompareSets(t *testing.T) {
	a := func(s ...string) []dns.RR {
		var addrs []netip.Addr
		for _, x := range s {
			addrs = append(addrs, netip.MustParseAddr(x))
		}
		return addrRRs("h.local.", addrs, 120, false)
	}
	tests := []struct {
		name string
		x, y []dns.RR
		want int
	}{
		{"identical", a("10.0.0.1"), a("10.0.0.1"), 0},
		{"order and TTL do not matter", a("10.0.0.1", "10.0.0.2"), append(a("10.0.0.2"), addrRRs("h.local.", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, 5, true)...), 0},
		{"lower address loses", a("10.0.0.1"), a("10.0.0.2"), -1},
		{"higher address wins", a("10.0.0.9"), a("10.0.0.10"), -1},
		{"type A sorts before AAAA", a("fd00::1"), a("10.0.0.1"), 1},
		{"longer set wins", a("10.0.0.1", "10.0.0.2"), a("10.0.0.1"), 1},
		{"empty loses", nil, a("10.0.0.1"), -1},
	}
	for _, tt := range tests {
		if got := compareSets(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: compareSets = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestCandidate(t *testing.T) {
	for _, tt := range []struct {
		attempt int
		want    string
	}{{0, "hearth"}, {1, "hearth"}, {2, "hearth-2"}, {10, "hearth-10"}} {
		if got := candidate("hearth", tt.attempt); got != tt.want {
			t.Errorf("candidate(hearth, %d) = %q, want %q", tt.attempt, got, tt.want)
		}
	}
}

func TestResolveOverFakeLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n fakeNet
		n.start(t, "hearth", "10.0.0.1")
		client := n.join("10.0.0.9:41000")
		start := time.Now()
		addrs, err := resolve(t.Context(), client, "HEARTH", 250*time.Millisecond, time.Second)
		if err != nil {
			t.Fatalf("resolve = %v", err)
		}
		if want := []netip.Addr{netip.MustParseAddr("10.0.0.1")}; !slices.Equal(addrs, want) {
			t.Fatalf("resolve = %v, want %v", addrs, want)
		}
		// Not answered before probing ends: about a second.
		if d := time.Since(start); d < 750*time.Millisecond || d > 2*time.Second {
			t.Errorf("resolved after %v, want just after probing", d)
		}

		short, stop := context.WithTimeout(t.Context(), 2*time.Second)
		defer stop()
		if _, err := resolve(short, client, "nobody.local", 250*time.Millisecond, time.Second); !errors.Is(err, ErrNotFound) {
			t.Fatalf("resolve(nobody) = %v, want ErrNotFound", err)
		}
	})
}
