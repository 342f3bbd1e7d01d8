package daemon_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v4"
)

func TestTURNCredentialsAllocate(t *testing.T) {
	url, cs := household(t)
	if s := newClient(t, url).do("GET", "/api/v1/turn/credentials", nil, nil); s != 401 {
		t.Fatalf("credentials without a session = %d, want 401", s)
	}
	var cred struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
		TTL        int      `json:"ttl"`
	}
	if s := cs["kid"].do("GET", "/api/v1/turn/credentials", nil, &cred); s != 200 {
		t.Fatalf("credentials = %d", s)
	}
	if cred.TTL != 600 || cred.Username == "" || cred.Credential == "" || len(cred.URLs) == 0 {
		t.Fatalf("credentials = %+v", cred)
	}
	var server string
	for _, u := range cred.URLs {
		if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=udp") {
			server = strings.TrimSuffix(strings.TrimPrefix(u, "turn:"), "?transport=udp")
		}
	}
	if !strings.HasPrefix(server, "127.0.0.1:") {
		t.Fatalf("no UDP TURN URL for the host the client used: %v", cred.URLs)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server, Conn: conn,
		Username: cred.Username, Password: cred.Credential, Realm: "hearth", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relayConn, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate with the API's credentials: %v", err)
	}
	relayConn.Close()
	conn2, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	bad, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, Conn: conn2, Username: cred.Username,
		Password: "forged", Realm: "hearth", RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Allocate(); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Fatalf("allocation with a forged credential = %v, want 401 Unauthorized", err)
	}
}
