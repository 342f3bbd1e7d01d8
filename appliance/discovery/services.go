package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/grandcat/zeroconf"
)

// publication is what is published for a held name.
type publication struct {
	name     string // e.g. "hearth-2"
	host     string // its host name, "hearth-2.local."
	port     int
	services []serviceDef
	ifaces   []net.Interface
	// addrs are the addresses put in the services' answers; nil lets
	// zeroconf use the addresses of the interface each query came in on.
	addrs []netip.Addr
}

// publishZeroconf publishes the services with zeroconf, one server per
// service, and returns the function that withdraws them with goodbyes.
func publishZeroconf(p publication) (stop func(), err error) {
	var servers []*zeroconf.Server
	stop = func() {
		for _, s := range slices.Backward(servers) {
			s.Shutdown()
		}
	}
	var ips []string
	for _, a := range p.addrs {
		ips = append(ips, a.String())
	}
	for _, svc := range p.services {
		// The domain goes without its dot: zeroconf appends the domain to
		// a host name that does not already end in it.
		s, err := zeroconf.RegisterProxy(p.name, svc.typ, Domain, p.port, p.host, ips, svc.txt, p.ifaces)
		if err != nil {
			stop()
			return nil, fmt.Errorf("publish %s: %w", instanceFQDN(p.name, svc.typ), err)
		}
		servers = append(servers, s)
	}
	return stop, nil
}
