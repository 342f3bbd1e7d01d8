// Package discovery makes Hearth findable on the LAN over multicast DNS
// (RFC 6762) and DNS-SD (RFC 6763).
//
// An [Announcer] holds a host name, <name>.local, for the box and publishes
// two services under the same instance name: _hearth._tcp (TXT v=version,
// https=port, path=/) and _https._tcp. Before it claims a name it probes
// the link for it; when another host already holds the name it moves on to
// <name>-2, <name>-3 and so on ([Announcer.Name] tells which it holds). It
// answers A/AAAA queries for its host name itself (the zeroconf library
// answers only for services), defends its names against other hosts'
// probes, re-announces when the interfaces' addresses change and sends
// goodbyes (TTL 0) when it stops.
//
// It shares UDP port 5353 with any other mDNS stack on the box
// (SO_REUSEADDR and SO_REUSEPORT), so it runs next to avahi-daemon. A box
// without a multicast-capable interface is not an error the rest of Hearth
// sees: [Announcer.Run] keeps trying and [Announcer.Status] says why nothing
// is announced.
//
// [Browse] and [Resolve] are the client side, for `hearth doctor` and tests.
//
// It is the only package that imports github.com/grandcat/zeroconf, which
// publishes the services and browses for them; the host-name responder and
// the prober are built on github.com/miekg/dns.
package discovery
