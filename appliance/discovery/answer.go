package discovery

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// reply is one message to send in answer to a query.
type reply struct {
	msg     *dns.Msg
	unicast bool
	dst     netip.AddrPort
}

// answer builds the replies to query q, received as p, for the names held:
// A/AAAA (and NSEC for absent types) for the host name in any query, and
// the SRV and TXT records of the service instances for probes, which
// zeroconf leaves unanswered. Answers the querier already knows are left
// out (§7.1); a probe proposing exactly our records is our own echo.
func (s *session) answer(q *dns.Msg, p packet, now time.Time) []reply {
	legacy := p.src.Port() != mdnsPort
	probe := len(q.Ns) > 0
	var ans, extra []dns.RR
	unicast := true
	for _, qq := range q.Question {
		class := qq.Qclass &^ classTop
		if class != dns.ClassINET && class != dns.ClassANY || !s.ours(qq.Name) {
			continue
		}
		if probe {
			if theirs := named(q.Ns, qq.Name); len(theirs) > 0 && compareSets(s.proposed(qq.Name), theirs) == 0 {
				continue
			}
		}
		var an, ex []dns.RR
		if equalName(qq.Name, s.host) {
			an, ex = s.hostAnswer(qq.Qtype, p.ifIndex)
		} else if probe {
			for _, rr := range s.proposed(qq.Name) {
				if qq.Qtype == dns.TypeANY || qq.Qtype == rr.Header().Rrtype {
					rr.Header().Class |= classTop
					an = append(an, rr)
				}
			}
		}
		if len(an) == 0 {
			continue
		}
		if qq.Qclass&classTop == 0 {
			unicast = false
		}
		ans = appendNew(ans, an...)
		extra = appendNew(extra, ex...)
	}
	ans = slices.DeleteFunc(ans, func(rr dns.RR) bool { return knownAnswer(rr, q.Answer) })
	extra = slices.DeleteFunc(extra, func(rr dns.RR) bool {
		return knownAnswer(rr, q.Answer) || slices.ContainsFunc(ans, func(a dns.RR) bool { return sameRecord(a, rr) })
	})
	if len(ans) == 0 {
		return nil
	}
	m := s.response(ans)
	m.Extra = extra
	switch {
	case legacy:
		// §6.7: a plain DNS resolver asked; answer it like a DNS server.
		m.Id = q.Id
		m.Question = q.Question
		for _, rr := range append(m.Answer, m.Extra...) {
			h := rr.Header()
			h.Class &^= classTop
			h.Ttl = min(h.Ttl, legacyTTL)
		}
		return []reply{{msg: m, unicast: true, dst: p.src}}
	case unicast && !probe:
		return []reply{{msg: m, unicast: true, dst: p.src}}
	}
	limit := answerInterval
	if probe {
		limit = defendInterval
	}
	m.Answer = s.rateLimit(p.ifIndex, m.Answer, now, limit)
	if len(m.Answer) == 0 {
		return nil
	}
	s.noteMulticast(p.ifIndex, m.Answer, now)
	return []reply{{msg: m}}
}

// hostAnswer returns the answer and additional records for a question of
// type qtype about the host name, received on ifIndex.
func (s *session) hostAnswer(qtype uint16, ifIndex int) (answer, additional []dns.RR) {
	addrs, ok := s.addrs[ifIndex]
	if !ok {
		addrs = s.all
	}
	var v4, v6 []dns.RR
	for _, rr := range addrRRs(s.host, addrs, hostTTL, true) {
		if rr.Header().Rrtype == dns.TypeA {
			v4 = append(v4, rr)
		} else {
			v6 = append(v6, rr)
		}
	}
	var types []uint16
	if len(v4) > 0 {
		types = append(types, dns.TypeA)
	}
	if len(v6) > 0 {
		types = append(types, dns.TypeAAAA)
	}
	nsec := nsecRR(s.host, types)
	switch {
	case qtype == dns.TypeANY:
		return append(v4, v6...), nil
	case qtype == dns.TypeA && len(v4) > 0:
		if len(v6) == 0 {
			return v4, []dns.RR{nsec}
		}
		return v4, v6
	case qtype == dns.TypeAAAA && len(v6) > 0:
		if len(v4) == 0 {
			return v6, []dns.RR{nsec}
		}
		return v6, v4
	}
	// §6.1: a type the name does not have is denied with NSEC.
	return []dns.RR{nsec}, append(v4, v6...)
}

// knownAnswer reports whether the querier listed rr among the answers it
// knows with at least half its TTL left (§7.1).
func knownAnswer(rr dns.RR, known []dns.RR) bool {
	return slices.ContainsFunc(known, func(k dns.RR) bool {
		return sameRecord(k, rr) && k.Header().Ttl >= rr.Header().Ttl/2
	})
}

func appendNew(list []dns.RR, rrs ...dns.RR) []dns.RR {
	for _, rr := range rrs {
		if !slices.ContainsFunc(list, func(o dns.RR) bool { return sameRecord(o, rr) }) {
			list = append(list, rr)
		}
	}
	return list
}

func (s *session) rateLimit(ifIndex int, rrs []dns.RR, now time.Time, limit time.Duration) []dns.RR {
	return slices.DeleteFunc(rrs, func(rr dns.RR) bool {
		h := rr.Header()
		last, ok := s.lastMcast[rateKey{ifIndex, strings.ToLower(h.Name), h.Rrtype}]
		return ok && now.Sub(last) < limit
	})
}

func (s *session) noteMulticast(ifIndex int, rrs []dns.RR, now time.Time) {
	for _, rr := range rrs {
		h := rr.Header()
		s.lastMcast[rateKey{ifIndex, strings.ToLower(h.Name), h.Rrtype}] = now
	}
}
