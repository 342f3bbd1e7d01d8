package discovery

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// TTLs and the class bit mDNS repurposes.
const (
	hostTTL    = 120  // A/AAAA/NSEC for the host name (RFC 6762 §10)
	serviceTTL = 3200 // SRV/TXT/PTR: zeroconf's TTL, so both agree
	legacyTTL  = 10   // cap for answers to legacy unicast queries (§6.7)
	// classTop is the cache-flush bit in a record's class and the
	// unicast-response (QU) bit in a question's class.
	classTop = 1 << 15
)

// serviceDef is one DNS-SD service published for the held name.
type serviceDef struct {
	typ string // e.g. "_hearth._tcp"
	txt []string
}

// services are the services Hearth publishes.
func (c *Config) services() []serviceDef {
	return []serviceDef{
		{typ: ServiceType, txt: []string{"v=" + c.Version, "https=" + strconv.Itoa(c.Port), "path=/"}},
		{typ: HTTPSServiceType, txt: []string{"path=/"}},
	}
}

// candidate is the attempt-th name tried for base: base, base-2, base-3...
func candidate(base string, attempt int) string {
	if attempt <= 1 {
		return base
	}
	return base + "-" + strconv.Itoa(attempt)
}

func hostFQDN(name string) string          { return name + "." + Domain + "." }
func instanceFQDN(name, typ string) string { return name + "." + typ + "." + Domain + "." }

// equalName compares domain names the DNS way: case-insensitively.
func equalName(a, b string) bool { return strings.EqualFold(a, b) }

func flushClass(flush bool) uint16 {
	if flush {
		return dns.ClassINET | classTop
	}
	return dns.ClassINET
}

// addrRRs returns an A or AAAA record for each address.
func addrRRs(host string, addrs []netip.Addr, ttl uint32, flush bool) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		if a.Is4() {
			out = append(out, &dns.A{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: flushClass(flush), Ttl: ttl}, A: a.AsSlice()})
		} else {
			out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeAAAA, Class: flushClass(flush), Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	return out
}

// nsecRR asserts that host has records of these types and no others
// (RFC 6762 §6.1).
func nsecRR(host string, types []uint16) dns.RR {
	return &dns.NSEC{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeNSEC, Class: flushClass(true), Ttl: hostTTL},
		NextDomain: host, TypeBitMap: types}
}

func srvRR(instance, host string, port int, ttl uint32, flush bool) dns.RR {
	return &dns.SRV{Hdr: dns.RR_Header{Name: instance, Rrtype: dns.TypeSRV, Class: flushClass(flush), Ttl: ttl},
		Port: uint16(port), Target: host}
}

func txtRR(instance string, txt []string, ttl uint32, flush bool) dns.RR {
	return &dns.TXT{Hdr: dns.RR_Header{Name: instance, Rrtype: dns.TypeTXT, Class: flushClass(flush), Ttl: ttl}, Txt: txt}
}

// rdata returns the record's data in wire form, names uncompressed, as
// RFC 6762 §8.2 compares it; nil when it does not pack.
func rdata(rr dns.RR) []byte {
	buf := make([]byte, dns.Len(rr)+16)
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	_, off, err := dns.UnpackDomainName(buf, 0)
	if err != nil || off+10 > end {
		return nil
	}
	return buf[off+10 : end]
}

// sameRecord reports whether a and b are the same record, TTL and
// cache-flush bit aside.
func sameRecord(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	return ha.Rrtype == hb.Rrtype && ha.Class&^classTop == hb.Class&^classTop &&
		equalName(ha.Name, hb.Name) && bytes.Equal(rdata(a), rdata(b))
}

// compareSets orders two sets of records for the same name as RFC 6762
// §8.2 does to break a tie between simultaneous probes: sorted by class,
// type and rdata, compared pairwise, and a longer set wins over its prefix.
// It returns -1 when a loses, 0 when the sets are identical, +1 when a wins.
func compareSets(a, b []dns.RR) int {
	type key struct {
		class, typ uint16
		data       []byte
	}
	keys := func(rrs []dns.RR) []key {
		out := make([]key, 0, len(rrs))
		for _, rr := range rrs {
			h := rr.Header()
			out = append(out, key{h.Class &^ classTop, h.Rrtype, rdata(rr)})
		}
		cmpKey := func(x, y key) int {
			return cmp.Or(cmp.Compare(x.class, y.class), cmp.Compare(x.typ, y.typ), bytes.Compare(x.data, y.data))
		}
		slices.SortFunc(out, cmpKey)
		return slices.CompactFunc(out, func(x, y key) bool { return cmpKey(x, y) == 0 })
	}
	ka, kb := keys(a), keys(b)
	for i := range min(len(ka), len(kb)) {
		if c := cmp.Or(cmp.Compare(ka[i].class, kb[i].class), cmp.Compare(ka[i].typ, kb[i].typ), bytes.Compare(ka[i].data, kb[i].data)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(ka), len(kb))
}

// named returns the records among rrs owned by name.
func named(rrs []dns.RR, name string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if equalName(rr.Header().Name, name) {
			out = append(out, rr)
		}
	}
	return out
}

// recordAddr returns the address an A or AAAA record holds.
func recordAddr(rr dns.RR) (netip.Addr, bool) {
	switch r := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(r.A)
		return a.Unmap(), ok
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(r.AAAA)
		return a, ok
	}
	return netip.Addr{}, false
}
