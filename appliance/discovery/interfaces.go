package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// interfaces returns the interfaces to run on: Config.Interfaces, or the
// multicast-capable ones that have an address (so interfaces that come and
// go without one, such as a container's bridge ports, change nothing).
func (a *Announcer) interfaces() ([]net.Interface, error) {
	if a.cfg.Interfaces != nil {
		if len(a.cfg.Interfaces) == 0 {
			return nil, ErrNoInterface
		}
		return a.cfg.Interfaces, nil
	}
	all, err := multicastInterfaces()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, ErrNoInterface
	}
	var out []net.Interface
	var names []string
	for _, ifi := range all {
		names = append(names, ifi.Name)
		if addrs, err := interfaceAddrs(ifi); err == nil && len(addrs) > 0 {
			out = append(out, ifi)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w (%s)", ErrNoAddress, strings.Join(names, ", "))
	}
	return out, nil
}

// addresses returns what to announce on each interface.
func (a *Announcer) addresses(ifaces []net.Interface) (map[int][]netip.Addr, error) {
	out := map[int][]netip.Addr{}
	n := 0
	if a.cfg.Addrs != nil {
		list, err := a.cfg.Addrs()
		if err != nil {
			return nil, fmt.Errorf("list addresses to announce: %w", err)
		}
		list = normalizeAddrs(list)
		for _, ifi := range ifaces {
			out[ifi.Index] = list
		}
		n = len(list)
	} else {
		for _, ifi := range ifaces {
			list, err := interfaceAddrs(ifi)
			if err != nil {
				return nil, err
			}
			out[ifi.Index] = normalizeAddrs(list)
			n += len(list)
		}
	}
	if n == 0 {
		names := make([]string, len(ifaces))
		for i, ifi := range ifaces {
			names[i] = ifi.Name
		}
		return nil, fmt.Errorf("%w (%s)", ErrNoAddress, strings.Join(names, ", "))
	}
	return out, nil
}

// normalizeAddrs unmaps, drops zones and invalid addresses, sorts and
// dedups.
func normalizeAddrs(in []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(in))
	for _, a := range in {
		if a.IsValid() && !a.IsUnspecified() {
			out = append(out, a.Unmap().WithZone(""))
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// multicastInterfaces lists the interfaces mDNS can run on: up and
// multicast-capable, but not loopback or point-to-point links (avahi's
// default too: a tunnel such as the tailnet carries no mDNS).
func multicastInterfaces() ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 ||
			ifi.Flags&(net.FlagLoopback|net.FlagPointToPoint) != 0 {
			continue
		}
		out = append(out, ifi)
	}
	return out, nil
}

// interfaceAddrs returns what is announced for an interface: its IPv4
// addresses and its global IPv6 addresses, or its link-local IPv6 ones when
// it has no global one (the choice zeroconf makes for the services' records
// too, so both agree). Zones are dropped: DNS records carry none.
func interfaceAddrs(ifi net.Interface) ([]netip.Addr, error) {
	as, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	var v4, v6, v6ll []netip.Addr
	for _, a := range as {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || ip.IsLoopback() {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4():
			v4 = append(v4, ip)
		case ip.IsGlobalUnicast():
			v6 = append(v6, ip)
		case ip.IsLinkLocalUnicast():
			v6ll = append(v6ll, ip.WithZone(""))
		}
	}
	if len(v6) == 0 {
		v6 = v6ll
	}
	return append(v4, v6...), nil
}

// linkPrefixes returns the prefixes of the interface's addresses: a
// source inside one of them is on the local link.
func linkPrefixes(ifi net.Interface) []netip.Prefix {
	as, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range as {
		if ipn, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(ipn.IP)
			ones, _ := ipn.Mask.Size()
			if ok {
				out = append(out, netip.PrefixFrom(ip.Unmap(), ones).Masked())
			}
		}
	}
	return out
}
