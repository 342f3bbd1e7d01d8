//go:build hearth_notailnet

package tailnet

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
)

// Built reports whether this binary links the tailnet (it was built without
// the hearth_notailnet tag).
const Built = false

// Node stands in for Hearth's node on the tailnet in a build without it:
// New returns ErrNotBuilt, and a zero Node's methods fail with it.
type Node struct{}

// New checks cfg and returns ErrNotBuilt: this build omits the tailnet.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, ErrNotBuilt
}

// Start returns ErrNotBuilt.
func (n *Node) Start(ctx context.Context) error { return ErrNotBuilt }

// Close does nothing.
func (n *Node) Close() error { return nil }

// Status reports a stopped node that failed with ErrNotBuilt.
func (n *Node) Status() Status {
	return Status{State: StateFailed, LastError: ErrNotBuilt.Error()}
}

// DNSName returns "".
func (n *Node) DNSName() string { return "" }

// Addrs returns nil.
func (n *Node) Addrs() []netip.Addr { return nil }

// Listen returns ErrNotBuilt.
func (n *Node) Listen(network, addr string) (net.Listener, error) { return nil, ErrNotBuilt }

// ListenPacket returns ErrNotBuilt.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) { return nil, ErrNotBuilt }

// Dial returns ErrNotBuilt.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, ErrNotBuilt
}

// WhoIs returns ErrNotBuilt.
func (n *Node) WhoIs(ctx context.Context, remoteAddr string) (Identity, error) {
	return Identity{}, ErrNotBuilt
}

// IdentifyRequest returns ErrNotBuilt.
func (n *Node) IdentifyRequest(r *http.Request) (Identity, error) { return Identity{}, ErrNotBuilt }

// GetCertificate returns ErrNotBuilt.
func (n *Node) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return nil, ErrNotBuilt
}

// TLSConfig returns a configuration whose GetCertificate fails with
// ErrNotBuilt.
func (n *Node) TLSConfig() *tls.Config { return &tls.Config{GetCertificate: n.GetCertificate} }
