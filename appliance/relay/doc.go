// Package relay is Hearth's built-in TURN/STUN server: the relay every
// WebRTC path falls back to, and the part of a home server most exposed to
// abuse. It is never an open relay.
//
// It is the only package that imports pion/turn (and pion/stun, pion/logging).
// It imports no other Hearth package: the wiring point hands it sockets
// ([net.PacketConn] for UDP, [net.Listener] for TCP and TLS) and hooks for
// what lives elsewhere (the shared secret in the store, the addresses of live
// sessions), and reads back standard types ([Credentials], [Stats]).
//
// What it adds around pion:
//
//   - Credentials in the TURN REST API style: username "<unix-expiry>:<user>",
//     password base64(HMAC-SHA1(secret, username)). Validation accepts the
//     current secret and any previous one, so a rotation does not break live
//     allocations. Expiry is enforced when an allocation is created; requests
//     on an allocation that already exists (refresh, permissions, channels)
//     need a valid signature and the same username, so a call may outlive the
//     credential's TTL.
//   - A gate in front of pion that answers with the right TURN errors: 401 for
//     bad, expired or unknown-secret credentials, 441 for a username that
//     does not own the allocation, 442 for TCP relays, 403 (443 for IPv6)
//     for forbidden peers, 486 for a user or source address over its
//     allocation quota, 508 at capacity or past 64 peers on one allocation;
//     floods of requests from one address are dropped.
//   - A peer policy (see [Config]): loopback, unspecified, link-local,
//     multicast, broadcast and reserved addresses and the appliance's own
//     service ports are refused, after embedded IPv4 forms in IPv6 addresses
//     (mapped, compatible, NAT64, 6to4, Teredo, ISATAP) are unwrapped;
//     private and CGNAT addresses are allowed only for live Hearth sessions
//     ([Config.IsKnownPeer]) or this server's own relay addresses.
//     Permissions are per IP address, so every relayed datagram is checked
//     again: to the appliance's own addresses only live relay ports may be
//     reached.
//   - A per-user bandwidth quota (token bucket over relayed bytes).
//   - [Server.Stats] for metrics and the admin UI, and structured logs in
//     which refusals are logged once per user or address per minute, never
//     per packet, and client addresses are truncated unless configured.
//
// pion keeps the control plane (allocations, permissions, channels,
// lifetimes). The data plane is the relay's own, mirrored from pion's
// events: one goroutine waits on an epoll set holding every relay socket
// and the UDP listeners (which it takes out of Go's netpoller), and carries
// ChannelData between them with non-blocking system calls, as coturn's
// relay threads do; everything else goes to pion. That costs a quarter to a
// third less CPU per relayed datagram than pion's goroutine per allocation
// (.ci/bench-relay compares it with coturn). UDP sockets of other types
// (not *net.UDPConn) are read by pion, with the same checks. The package
// is Linux-only, as Hearth is.
package relay
