package proof_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v4"
)

type turnCreds struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	TTL        int      `json:"ttl"`
}

// turnAddr returns the relay's host:port for a transport from the URLs.
func (c turnCreds) turnAddr(t *testing.T, transport string) string {
	t.Helper()
	for _, u := range c.URLs {
		if rest, ok := strings.CutPrefix(u, "turn:"); ok && strings.HasSuffix(rest, "?transport="+transport) {
			return strings.TrimSuffix(rest, "?transport="+transport)
		}
	}
	t.Fatalf("no turn: URL for %s in %v", transport, c.URLs)
	return ""
}

// turnClient dials the relay over transport with the credentials.
func turnClient(t *testing.T, c turnCreds, transport, username string) *turn.Client {
	t.Helper()
	addr := c.turnAddr(t, transport)
	var conn net.PacketConn
	if transport == "tcp" {
		tc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(tc)
	} else {
		uc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = uc
	}
	cl, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Username: username,
		Password: c.Credential, Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); conn.Close() })
	return cl
}

// TestRelayAbuse: a signed-in member with valid TURN credentials from the
// real daemon tries to relay to every forbidden class of address, over
// UDP and TCP to the relay, also IPv4-mapped, and to ask for a TCP relay
// (RFC 6062); every attempt is refused, while a public peer is allowed.
// Forged (re-dated) credentials are refused, and the per-user allocation
// quota holds.
func TestRelayAbuse(t *testing.T) {
	h := newHousehold(t, nil)
	var creds turnCreds
	h.member.must(t, "GET", "/api/v1/turn/credentials", nil, &creds)
	httpPort := h.url[strings.LastIndex(h.url, ":")+1:]
	turnPort := creds.turnAddr(t, "udp")[strings.LastIndex(creds.turnAddr(t, "udp"), ":")+1:]
	forbidden := []struct{ class, peer string }{
		{"loopback", "127.0.0.1:22"},
		{"loopback", "127.1.2.3:9"},
		{"loopback", "[::1]:9"},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.1]:22"},
		{"link-local", "169.254.169.254:80"},
		{"link-local", "[fe80::1]:9"},
		{"IPv4-mapped link-local", "[::ffff:169.254.169.254]:80"},
		{"multicast", "224.0.0.251:5353"},
		{"multicast", "239.255.255.250:1900"},
		{"multicast", "[ff02::fb]:5353"},
		{"unspecified", "0.0.0.0:9"},
		{"unspecified", "[::]:9"},
		{"broadcast", "255.255.255.255:9"},
		{"own HTTP port", "127.0.0.1:" + httpPort},
		{"own TURN port", "127.0.0.1:" + turnPort},
		{"private, no session", "10.1.2.3:9"},
		{"private, no session", "172.16.5.5:9"},
		{"private, no session", "192.168.77.77:9"},
		{"IPv4-mapped private", "[::ffff:10.1.2.3]:9"},
		{"unique local", "[fd00::1]:9"},
	}
	tried, refused := 0, 0
	for _, transport := range []string{"udp", "tcp"} {
		cl := turnClient(t, creds, transport, creds.Username)
		relayed, err := cl.Allocate()
		if err != nil {
			t.Fatalf("allocate over %s with valid credentials: %v", transport, err)
		}
		defer relayed.Close()
		for _, f := range forbidden {
			addr, err := net.ResolveUDPAddr("udp", f.peer)
			if err != nil {
				t.Fatal(err)
			}
			tried++
			if err := cl.CreatePermission(addr); err == nil {
				t.Errorf("over %s: permission to %s (%s) granted", transport, f.peer, f.class)
			} else {
				refused++
			}
		}
		// The control: a public peer gets its permission (nothing is sent).
		if err := cl.CreatePermission(&net.UDPAddr{IP: net.IPv4(8, 8, 8, 8), Port: 53}); err != nil {
			t.Errorf("over %s: permission to a public peer refused: %v", transport, err)
		}
		// A TCP relay (RFC 6062) would reach TCP services: refused.
		tried++
		if alloc, err := turnClient(t, creds, transport, creds.Username).AllocateTCP(); err == nil {
			alloc.Close()
			t.Errorf("over %s: TCP allocation granted", transport)
		} else {
			refused++
		}
	}

	// Credentials: re-dating the username breaks its HMAC.
	exp, user, _ := strings.Cut(creds.Username, ":")
	n, _ := strconv.ParseInt(exp, 10, 64)
	for _, forged := range []string{strconv.FormatInt(n+86400*365, 10) + ":" + user, exp + ":" + h.adminID} {
		tried++
		if _, err := turnClient(t, creds, "udp", forged).Allocate(); err == nil {
			t.Errorf("allocation with forged username %q granted", forged)
		} else {
			refused++
		}
	}
	if creds.TTL <= 0 || creds.TTL > 24*3600 {
		t.Errorf("credential TTL %ds, want short-lived", creds.TTL)
	}

	// Quota: one user's live allocations are bounded.
	allocs := 0
	for range 40 {
		if _, err := turnClient(t, creds, "udp", creds.Username).Allocate(); err != nil {
			break
		}
		allocs++
	}
	tried++
	if allocs >= 40 {
		t.Errorf("%d allocations for one user, no quota", allocs)
	} else {
		refused++
	}
	t.Logf("relay attacks refused %d / tried %d; the per-user quota stopped allocations at %d live (2 held)", refused, tried, allocs+2)
}
