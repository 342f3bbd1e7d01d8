package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Timing of probing and announcing (RFC 6762 §8).
const (
	probeCount       = 3
	probeInterval    = 250 * time.Millisecond
	probeMaxDelay    = 250 * time.Millisecond // random wait before the first probe
	tieLossDelay     = time.Second            // §8.2: the loser of a tie waits, then probes again
	announceInterval = time.Second            // between the two announcements
	conflictWindow   = 10 * time.Second       // §8.1: 15 conflicts in 10 s...
	conflictBurst    = 15
	conflictBackoff  = 5 * time.Second  // ...and probing slows down to one try in 5 s
	retiredFor       = 10 * time.Second // how long a removed address still counts as ours
	answerInterval   = time.Second      // §6: a record is multicast at most once a second
	defendInterval   = 250 * time.Millisecond
)

// errInterfacesChanged ends a session so Run starts over on the new set.
var errInterfacesChanged = errors.New("network interfaces changed")

type phase int

const (
	phaseProbing phase = iota
	phaseAnnounced
)

// instanceRec is one published service instance.
type instanceRec struct {
	fqdn string
	svc  serviceDef
}

// rateKey is what multicast rate limiting counts by.
type rateKey struct {
	ifIndex int
	name    string
	typ     uint16
}

// session is one run of the responder on a fixed set of interfaces. It is
// owned by the goroutine in run; only Status crosses to other goroutines.
type session struct {
	a        *Announcer
	cfg      *Config
	log      *slog.Logger
	t        transport
	ifaces   []net.Interface
	addrs    map[int][]netip.Addr   // announced per interface index
	all      []netip.Addr           // the union, sorted
	prefixes map[int][]netip.Prefix // on-link prefixes per interface index

	attempt   int
	name      string
	host      string
	instances []instanceRec

	phase       phase
	probes      int // probes sent this round
	announces   int // announcements still to send
	timer       *time.Timer
	stopPublish func()
	conflicts   []time.Time
	lastMcast   map[rateKey]time.Time
	// retired are addresses given up lately, still ours for a while: our
	// own announcements of them may yet echo back.
	retired map[netip.Addr]time.Time
}

// session runs the responder on the current interfaces until ctx ends or
// they change. It returns the attempt number reached, so a name won after a
// conflict is kept across sessions.
func (a *Announcer) session(ctx context.Context, attempt int) (int, error) {
	ifaces, err := a.interfaces()
	if err != nil {
		return attempt, err
	}
	addrs, err := a.addresses(ifaces)
	if err != nil {
		return attempt, err
	}
	t, err := a.cfg.listen(ifaces)
	if err != nil {
		return attempt, err
	}
	defer t.Close()
	s := newSession(a, t, ifaces, addrs, attempt)
	err = s.run(ctx)
	return s.attempt, err
}

func newSession(a *Announcer, t transport, ifaces []net.Interface, addrs map[int][]netip.Addr, attempt int) *session {
	s := &session{a: a, cfg: &a.cfg, log: a.log, t: t, ifaces: ifaces, lastMcast: map[rateKey]time.Time{},
		retired: map[netip.Addr]time.Time{}, prefixes: map[int][]netip.Prefix{}}
	for _, ifi := range ifaces {
		s.prefixes[ifi.Index] = linkPrefixes(ifi)
	}
	s.setAddrs(addrs)
	s.setName(max(attempt, 1))
	names := make([]string, len(ifaces))
	for i, ifi := range ifaces {
		names[i] = ifi.Name
	}
	a.update(func(st *Status) { st.Interfaces = names })
	return s
}

func (s *session) setAddrs(addrs map[int][]netip.Addr) {
	s.addrs = addrs
	var all []netip.Addr
	for _, l := range addrs {
		all = append(all, l...)
	}
	s.all = normalizeAddrs(all)
}

func (s *session) setName(attempt int) {
	s.attempt = attempt
	s.name = candidate(s.cfg.Name, attempt)
	s.host = hostFQDN(s.name)
	s.instances = nil
	for _, svc := range s.cfg.services() {
		s.instances = append(s.instances, instanceRec{fqdn: instanceFQDN(s.name, svc.typ), svc: svc})
	}
}

func (s *session) run(ctx context.Context) error {
	s.timer = time.NewTimer(time.Hour)
	defer s.timer.Stop()
	s.startProbing(rand.N(probeMaxDelay))
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			s.leave()
			return ctx.Err()
		case p, ok := <-s.t.Packets():
			if !ok {
				s.leave()
				return errors.New("mdns sockets closed")
			}
			s.handle(p)
		case <-s.timer.C:
			s.tick()
		case <-poll.C:
			if err := s.poll(); err != nil {
				s.leave()
				return err
			}
		}
	}
}

func (s *session) startProbing(delay time.Duration) {
	s.phase = phaseProbing
	s.probes = 0
	s.announces = 0
	s.timer.Reset(delay)
	s.a.update(func(st *Status) {
		st.Name, st.Host = s.name, strings.TrimSuffix(s.host, ".")
		st.Addrs = slices.Clone(s.all)
		st.Services = nil
		s.a.setStateLocked(StateProbing)
	})
}

// tick sends the next probe or announcement.
func (s *session) tick() {
	switch s.phase {
	case phaseProbing:
		if s.probes < probeCount {
			s.send(s.probe(), 0)
			s.probes++
			s.timer.Reset(probeInterval)
			return
		}
		s.establish()
	case phaseAnnounced:
		if s.announces > 0 {
			s.announce()
			s.announces--
			if s.announces > 0 {
				s.timer.Reset(announceInterval)
			}
		}
	}
}

// establish takes the name after probing found no one else holding it.
func (s *session) establish() {
	s.phase = phaseAnnounced
	s.announce()
	s.announces = 1
	s.timer.Reset(announceInterval)
	s.a.setHeld(s.name)
	services := make([]string, len(s.instances))
	for i, in := range s.instances {
		services[i] = strings.TrimSuffix(in.fqdn, ".")
	}
	s.a.update(func(st *Status) {
		st.Services = services
		st.Addrs = slices.Clone(s.all)
		st.LastError = ""
		s.a.setStateLocked(StateAnnounced)
	})
	s.log.Info("mdns name announced", "host", strings.TrimSuffix(s.host, "."), "addrs", s.all)
	s.publish()
}

func (s *session) publish() {
	p := publication{name: s.name, host: s.host, port: s.cfg.Port, services: s.cfg.services(), ifaces: s.ifaces}
	if s.cfg.Addrs != nil {
		p.addrs = s.all
	}
	stop, err := s.cfg.publish(p)
	if err != nil {
		s.log.Warn("publish mdns services", "err", err)
		s.a.update(func(st *Status) { st.LastError = err.Error() })
		return
	}
	s.stopPublish = stop
}

// leave gives up the name: goodbyes for the services and the host records.
func (s *session) leave() {
	if s.phase != phaseAnnounced {
		return
	}
	if s.stopPublish != nil {
		s.stopPublish()
		s.stopPublish = nil
	}
	for _, ifi := range s.ifaces {
		s.send(s.response(addrRRs(s.host, s.addrs[ifi.Index], 0, false)), ifi.Index)
	}
	s.phase = phaseProbing
	s.a.setHeld("")
	s.log.Info("mdns goodbye sent", "host", strings.TrimSuffix(s.host, "."))
}

// conflict gives up the candidate name for the next one.
func (s *session) conflict(reason string) {
	now := time.Now()
	s.conflicts = append(slices.DeleteFunc(s.conflicts, func(t time.Time) bool { return now.Sub(t) > conflictWindow }), now)
	old := s.name
	s.setName(s.attempt + 1)
	s.log.Warn("mdns name is taken on the network; trying the next", "name", old, "next", s.name, "reason", reason)
	s.a.update(func(st *Status) { st.Conflicts++ })
	delay := rand.N(probeMaxDelay)
	if len(s.conflicts) >= conflictBurst {
		delay = conflictBackoff
	}
	s.startProbing(delay)
}

// poll checks the interfaces and addresses, re-announcing on a change.
func (s *session) poll() error {
	if s.cfg.Interfaces == nil {
		ifaces, err := s.a.interfaces()
		if err != nil || !sameInterfaces(ifaces, s.ifaces) {
			return errInterfacesChanged
		}
	}
	addrs, err := s.a.addresses(s.ifaces)
	if errors.Is(err, ErrNoAddress) {
		return err
	}
	if err != nil {
		s.log.Warn("mdns: check addresses", "err", err)
		return nil
	}
	changed := false
	for _, ifi := range s.ifaces {
		old, cur := s.addrs[ifi.Index], addrs[ifi.Index]
		if slices.Equal(old, cur) {
			continue
		}
		changed = true
		var gone []netip.Addr
		for _, a := range old {
			if !slices.Contains(cur, a) {
				gone = append(gone, a)
				s.retired[a] = time.Now()
			}
		}
		if s.phase == phaseAnnounced && len(gone) > 0 {
			s.send(s.response(addrRRs(s.host, gone, 0, false)), ifi.Index)
		}
	}
	if !changed {
		return nil
	}
	s.setAddrs(addrs)
	s.a.update(func(st *Status) { st.Addrs = slices.Clone(s.all) })
	if s.phase != phaseAnnounced {
		return nil
	}
	s.log.Info("mdns addresses changed; announcing again", "addrs", s.all)
	s.announce()
	s.announces = 1
	s.timer.Reset(announceInterval)
	if s.cfg.Addrs != nil && s.stopPublish != nil {
		// Services were published with the injected addresses: redo them.
		s.stopPublish()
		s.stopPublish = nil
		s.publish()
	}
	return nil
}

func sameInterfaces(a, b []net.Interface) bool {
	key := func(l []net.Interface) []string {
		out := make([]string, len(l))
		for i, ifi := range l {
			out[i] = fmt.Sprint(ifi.Index, ifi.Name)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

// probe builds a probe (RFC 6762 §8.1): an ANY question for each name,
// the records proposed for them in the authority section. It asks for
// multicast answers: a unicast one could be delivered to another mDNS
// stack's socket on this box, since they share the port.
func (s *session) probe() *dns.Msg {
	m := new(dns.Msg)
	m.Question = append(m.Question, dns.Question{Name: s.host, Qtype: dns.TypeANY, Qclass: dns.ClassINET})
	for _, in := range s.instances {
		m.Question = append(m.Question, dns.Question{Name: in.fqdn, Qtype: dns.TypeANY, Qclass: dns.ClassINET})
	}
	m.Ns = s.proposed(s.host)
	for _, in := range s.instances {
		m.Ns = append(m.Ns, s.proposed(in.fqdn)...)
	}
	return m
}

// proposed returns the records this host claims for one of its names.
func (s *session) proposed(name string) []dns.RR {
	if equalName(name, s.host) {
		return addrRRs(s.host, s.all, hostTTL, false)
	}
	for _, in := range s.instances {
		if equalName(name, in.fqdn) {
			return []dns.RR{srvRR(in.fqdn, s.host, s.cfg.Port, serviceTTL, false), txtRR(in.fqdn, in.svc.txt, serviceTTL, false)}
		}
	}
	return nil
}

// ours reports whether name is one of the names probed or held.
func (s *session) ours(name string) bool {
	if equalName(name, s.host) {
		return true
	}
	for _, in := range s.instances {
		if equalName(name, in.fqdn) {
			return true
		}
	}
	return false
}

func (s *session) announce() {
	for _, ifi := range s.ifaces {
		rrs := addrRRs(s.host, s.addrs[ifi.Index], hostTTL, true)
		if len(rrs) == 0 {
			continue
		}
		s.send(s.response(rrs), ifi.Index)
		s.noteMulticast(ifi.Index, rrs, time.Now())
	}
}

func (s *session) response(answer []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Authoritative = true
	m.Answer = answer
	return m
}

// send multicasts m on ifIndex (0: every interface). Send errors are
// logged at debug level: an interface without IPv6 fails every IPv6 send.
func (s *session) send(m *dns.Msg, ifIndex int) {
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		s.log.Error("mdns: pack message", "err", err)
		return
	}
	if err := s.t.Multicast(b, ifIndex); err != nil {
		s.log.Debug("mdns: multicast", "err", err)
	}
}

func (s *session) unicast(m *dns.Msg, dst netip.AddrPort, ifIndex int) {
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		s.log.Error("mdns: pack message", "err", err)
		return
	}
	if err := s.t.Unicast(b, dst, ifIndex); err != nil {
		s.log.Debug("mdns: unicast", "err", err)
	}
}

// handle processes one received datagram. Anything malformed is dropped,
// and so is a datagram sent to our address rather than the group by a host
// off the local link (RFC 6762 §11): mDNS answers only its neighbours.
func (s *session) handle(p packet) {
	if p.unicast && !s.onLink(p.src.Addr(), p.ifIndex) {
		return
	}
	m, ok := parse(p.data)
	if !ok {
		return
	}
	if m.Response {
		s.handleResponse(m, p)
		return
	}
	if s.phase == phaseProbing {
		if lost, name := s.lostTie(m); lost {
			s.log.Info("mdns: another host is probing for the same name; waiting", "name", name)
			s.startProbing(tieLossDelay)
		}
		return
	}
	for _, r := range s.answer(m, p, time.Now()) {
		if r.unicast {
			s.unicast(r.msg, r.dst, p.ifIndex)
		} else {
			s.send(r.msg, p.ifIndex)
		}
	}
}

// parse unpacks an mDNS message, refusing what RFC 6762 §18 says to
// ignore: a non-zero opcode or response code.
func parse(b []byte) (*dns.Msg, bool) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, false
	}
	if m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		return nil, false
	}
	return m, true
}

func (s *session) handleResponse(m *dns.Msg, p packet) {
	if s.fromUs(p.src.Addr()) {
		return // our own echo, or another responder on this box
	}
	if why := s.conflicting(m); why != "" {
		if s.phase == phaseProbing {
			s.conflict(why)
			return
		}
		// §9: another host claims our name after we took it; probe again
		// and let probing decide who keeps it.
		s.log.Warn("mdns: another host announces our name; probing again", "name", s.name, "reason", why)
		s.leave()
		s.startProbing(rand.N(probeMaxDelay))
	}
}

// onLink reports whether a is a neighbour on the interface ifIndex.
func (s *session) onLink(a netip.Addr, ifIndex int) bool {
	a = a.Unmap()
	if a.IsLinkLocalUnicast() {
		return true
	}
	a = a.WithZone("")
	return slices.ContainsFunc(s.prefixes[ifIndex], func(p netip.Prefix) bool { return p.Contains(a) })
}

// fromUs reports whether a is (or lately was) one of this host's
// addresses.
func (s *session) fromUs(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if slices.Contains(s.all, a) {
		return true
	}
	if t, ok := s.retired[a]; ok {
		if time.Since(t) < retiredFor {
			return true
		}
		delete(s.retired, a)
	}
	return false
}

// conflicting says why m's records conflict with the names probed or held,
// or "" when they do not. Goodbyes and records identical to ours are no
// conflict. While probing any other record with one of the names is; once
// announced, only an address or SRV that is not ours.
func (s *session) conflicting(m *dns.Msg) string {
	for _, sec := range [][]dns.RR{m.Answer, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Ttl == 0 || !s.ours(h.Name) {
				continue
			}
			if s.phase == phaseAnnounced && h.Rrtype != dns.TypeA && h.Rrtype != dns.TypeAAAA && h.Rrtype != dns.TypeSRV {
				continue
			}
			if a, ok := recordAddr(rr); ok && s.fromUs(a) {
				continue
			}
			if slices.ContainsFunc(s.proposed(h.Name), func(o dns.RR) bool { return sameRecord(o, rr) }) {
				continue
			}
			return fmt.Sprintf("%s %s", h.Name, strings.TrimPrefix(rr.String(), h.String()))
		}
	}
	return ""
}

// lostTie reports whether a probe from another host for one of the names
// this host is probing wins over ours (RFC 6762 §8.2). Our own probes come
// back identical and are no contest.
func (s *session) lostTie(m *dns.Msg) (bool, string) {
	if len(m.Ns) == 0 {
		return false, ""
	}
	for _, q := range m.Question {
		if !s.ours(q.Name) {
			continue
		}
		theirs := named(m.Ns, q.Name)
		if len(theirs) == 0 {
			continue
		}
		if compareSets(s.proposed(q.Name), theirs) < 0 {
			return true, q.Name
		}
	}
	return false, ""
}
