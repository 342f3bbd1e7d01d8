//go:build !hearth_notailnet

package tailnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"tailscale.com/client/local"
)

// WhoIs returns who is behind remoteAddr ("ip:port" or "ip"), a peer on
// the tailnet: the user logged in on that device, and the device. It fails
// with ErrNotTailnet when the address is not a peer's. Only call it for
// connections accepted on this Node's listeners (IdentifyRequest checks
// that): a device on the LAN may use any address, also one that looks like
// a tailnet peer's.
func (n *Node) WhoIs(ctx context.Context, remoteAddr string) (Identity, error) {
	ip, err := parseAddr(remoteAddr)
	if err != nil {
		return Identity{}, fmt.Errorf("tailnet whois %q: %w", remoteAddr, err)
	}
	_, lc, err := n.server()
	if err != nil {
		return Identity{}, fmt.Errorf("tailnet whois %s: %w", ip, err)
	}
	res, err := lc.WhoIs(ctx, ip.String())
	if errors.Is(err, local.ErrPeerNotFound) {
		return Identity{}, fmt.Errorf("tailnet whois %s: %w", ip, ErrNotTailnet)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("tailnet whois %s: %w", ip, err)
	}
	if res.Node == nil {
		return Identity{}, fmt.Errorf("tailnet whois %s: %w", ip, ErrNotTailnet)
	}
	id := Identity{
		NodeName: strings.TrimSuffix(res.Node.Name, "."),
		NodeID:   string(res.Node.StableID),
		Tags:     slices.Clone(res.Node.Tags),
		Addr:     ip,
	}
	if !res.Node.IsTagged() && res.UserProfile != nil {
		id.UserID = int64(res.UserProfile.ID)
		id.LoginName = res.UserProfile.LoginName
		id.DisplayName = res.UserProfile.DisplayName
	}
	return id, nil
}

// IdentifyRequest returns the tailnet identity behind an HTTP request that
// came in over one of this Node's listeners, for signing a member in
// without a password. A request from anywhere else (the LAN, loopback)
// fails with ErrNotTailnet: it is told apart by the local address of its
// connection (http.LocalAddrContextKey, set by net/http's Server), which
// is one of the node's tailnet addresses only for connections the node
// accepted. Refuse identities that are not IsPerson.
func (n *Node) IdentifyRequest(r *http.Request) (Identity, error) {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return Identity{}, fmt.Errorf("tailnet identify: %w: the request has no local address", ErrNotTailnet)
	}
	ip, err := parseAddr(local.String())
	if err != nil || !slices.Contains(n.Addrs(), ip) {
		return Identity{}, fmt.Errorf("tailnet identify: %w: the request came in on %s", ErrNotTailnet, local)
	}
	return n.WhoIs(r.Context(), r.RemoteAddr)
}

// parseAddr parses "ip:port", "[ip]:port" or "ip" into an unmapped address
// without zone.
func parseAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New("want ip:port or ip")
	}
	return ip.Unmap().WithZone(""), nil
}
