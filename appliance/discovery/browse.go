package discovery

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/miekg/dns"
)

// Service is a Hearth found on the LAN.
type Service struct {
	Instance string       `json:"instance"` // e.g. "hearth-2"
	Host     string       `json:"host"`     // e.g. "hearth-2.local"
	Port     int          `json:"port"`
	Addrs    []netip.Addr `json:"addrs"`
	// Text holds the TXT record's key=value pairs (v, https, path).
	Text map[string]string `json:"text,omitempty"`
}

// URL returns the address to open the service at, by host name.
func (s Service) URL() string {
	path := s.Text["path"]
	if path == "" {
		path = "/"
	}
	return "https://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) + path
}

// Browse looks for _hearth._tcp services on every multicast-capable
// interface for timeout (or until ctx ends) and returns what answered,
// sorted by instance name.
func Browse(ctx context.Context, timeout time.Duration) ([]Service, error) {
	ifaces, err := multicastInterfaces()
	if err != nil {
		return nil, fmt.Errorf("browse %s: %w", ServiceType, err)
	}
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("browse %s: %w", ServiceType, ErrNoInterface)
	}
	r, err := zeroconf.NewResolver(zeroconf.SelectIfaces(ifaces))
	if err != nil {
		// zeroconf wants both families by default; a box without IPv6
		// still browses over IPv4.
		r, err = zeroconf.NewResolver(zeroconf.SelectIfaces(ifaces), zeroconf.SelectIPTraffic(zeroconf.IPv4))
	}
	if err != nil {
		return nil, fmt.Errorf("browse %s: %w", ServiceType, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry)
	if err := r.Browse(ctx, ServiceType, Domain+".", entries); err != nil {
		return nil, fmt.Errorf("browse %s: %w", ServiceType, err)
	}
	found := map[string]Service{}
	for e := range entries { // closed by zeroconf when ctx ends
		s := fromEntry(e)
		if old, ok := found[s.Instance]; ok {
			s.Addrs = normalizeAddrs(append(old.Addrs, s.Addrs...))
		}
		found[s.Instance] = s
	}
	out := make([]Service, 0, len(found))
	for _, s := range found {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Service) int { return cmp.Compare(a.Instance, b.Instance) })
	return out, nil
}

func fromEntry(e *zeroconf.ServiceEntry) Service {
	s := Service{Instance: e.Instance, Host: strings.TrimSuffix(e.HostName, "."), Port: e.Port, Text: map[string]string{}}
	for _, ip := range append(e.AddrIPv4, e.AddrIPv6...) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			s.Addrs = append(s.Addrs, a)
		}
	}
	s.Addrs = normalizeAddrs(s.Addrs)
	for _, kv := range e.Text {
		k, v, _ := strings.Cut(kv, "=")
		s.Text[k] = v
	}
	return s
}

// Resolve looks up the addresses of an mDNS host name ("hearth" or
// "hearth.local") with one-shot queries (RFC 6762 §5.1) from an ephemeral
// port on every multicast-capable interface, repeated with backoff until a
// host answers or ctx ends (then ErrNotFound). It does not need port 5353,
// so it works next to any mDNS stack, and it asks every responder, not a
// local cache.
func Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	ifaces, err := multicastInterfaces()
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	t, err := listenUDP(ifaces, 0)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	defer t.Close()
	return resolve(ctx, t, host, 250*time.Millisecond, time.Second)
}

// resolve asks over t until an answer names host's addresses. Queries are
// sent at once, then after wait, doubling up to maxWait apart.
func resolve(ctx context.Context, t transport, host string, wait, maxWait time.Duration) ([]netip.Addr, error) {
	fqdn := dns.Fqdn(strings.ToLower(host))
	if !strings.HasSuffix(fqdn, "."+Domain+".") {
		fqdn += Domain + "."
	}
	name := strings.TrimSuffix(fqdn, ".")
	q := new(dns.Msg)
	q.Id = uint16(rand.N(1 << 16))
	q.Question = []dns.Question{{Name: fqdn, Qtype: dns.TypeA, Qclass: dns.ClassINET}, {Name: fqdn, Qtype: dns.TypeAAAA, Qclass: dns.ClassINET}}
	b, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var sendErr error
	for {
		select {
		case <-ctx.Done():
			if sendErr != nil {
				return nil, fmt.Errorf("resolve %s: %w (%w)", name, ErrNotFound, sendErr)
			}
			return nil, fmt.Errorf("resolve %s: %w", name, ErrNotFound)
		case <-timer.C:
			if err := t.Multicast(b, 0); err != nil {
				sendErr = err
			}
			timer.Reset(wait)
			wait = min(2*wait, maxWait)
		case p, ok := <-t.Packets():
			if !ok {
				return nil, fmt.Errorf("resolve %s: socket closed", name)
			}
			if addrs := answerAddrs(p.data, q.Id, fqdn); len(addrs) > 0 {
				return addrs, nil
			}
		}
	}
}

// answerAddrs returns the addresses for fqdn in a reply to the query with
// this id; nil for anything else, malformed packets included.
func answerAddrs(b []byte, id uint16, fqdn string) []netip.Addr {
	m, ok := parse(b)
	if !ok || !m.Response || m.Id != id && m.Id != 0 {
		return nil
	}
	var out []netip.Addr
	for _, rr := range append(m.Answer, m.Extra...) {
		if rr.Header().Ttl == 0 || !equalName(rr.Header().Name, fqdn) {
			continue
		}
		if a, ok := recordAddr(rr); ok {
			out = append(out, a)
		}
	}
	return normalizeAddrs(out)
}
