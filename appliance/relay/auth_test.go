package relay

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func TestCredentials(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{tcp: true, tls: true})
	now := time.Unix(1_700_000_000, 0)
	c, err := ts.Credentials("hearth.local:8443", "u1", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1700000600:u1"; c.Username != want {
		t.Errorf("Username = %q, want %q", c.Username, want)
	}
	if c.TTL != 600 {
		t.Errorf("TTL = %d, want 600", c.TTL)
	}
	if want := password([]byte("test secret one"), c.Username); c.Credential != want {
		t.Errorf("Credential = %q, want %q", c.Credential, want)
	}
	if raw, err := base64.StdEncoding.DecodeString(c.Credential); err != nil || len(raw) != 20 {
		t.Errorf("Credential %q is not base64 of an HMAC-SHA1: %v", c.Credential, err)
	}
	udpPort, tcpPort, tlsPort := port(ts.udp), port(ts.tcp), port(ts.tls)
	want := []string{
		"turn:hearth.local:" + udpPort + "?transport=udp",
		"turn:hearth.local:" + tcpPort + "?transport=tcp",
		"turns:hearth.local:" + tlsPort + "?transport=tcp",
		"stun:hearth.local:" + udpPort,
	}
	if strings.Join(c.URLs, " ") != strings.Join(want, " ") {
		t.Errorf("URLs = %q, want %q", c.URLs, want)
	}

	for _, tt := range []struct{ host, want string }{
		{"hearth.local", "hearth.local"},
		{"192.168.1.10:8443", "192.168.1.10"},
		{"[fd00::1]:8443", "[fd00::1]"},
		{"fd00::1", "[fd00::1]"},
		{"::ffff:192.168.1.10", "192.168.1.10"},
		{"", "127.0.0.1"},                      // the advertised address
		{"evil.example/?x=1", "127.0.0.1"},     // not a host name
		{"a b", "127.0.0.1"},                   //
		{"-bad-.example", "127.0.0.1"},         //
		{strings.Repeat("a", 64), "127.0.0.1"}, // label too long
	} {
		c, err := ts.Credentials(tt.host, "u1", now)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.URLs[0]; got != "turn:"+tt.want+":"+udpPort+"?transport=udp" {
			t.Errorf("Credentials(%q).URLs[0] = %q, want host %s", tt.host, got, tt.want)
		}
	}

	for _, user := range []string{"", "a\nb", "\x7f", strings.Repeat("x", 257), "\xff"} {
		if _, err := ts.Credentials("h", user, now); !errors.Is(err, ErrBadUser) {
			t.Errorf("Credentials(user %q) error = %v, want ErrBadUser", user, err)
		}
	}
	ts.secrets.rotate(nil, false)
	if _, err := ts.Credentials("h", "u1", now); !errors.Is(err, ErrNoSecret) {
		t.Errorf("Credentials without a secret: error = %v, want ErrNoSecret", err)
	}
}

func port(hostport string) string { return hostport[strings.LastIndexByte(hostport, ':')+1:] }

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateSecret()
	if len(a) != SecretSize || string(a) == string(b) {
		t.Errorf("GenerateSecret() = %x, %x: want two different %d-byte secrets", a, b, SecretSize)
	}
}

var usernameTests = []struct {
	in     string
	expiry int64
	user   string
	ok     bool
}{
	{"1700000600:u1", 1700000600, "u1", true},
	{"1700000600:guest:abc", 1700000600, "guest:abc", true}, // the user may contain ':'
	{"0:u", 0, "u", true},
	{"9999999999:u", 9999999999, "u", true},
	{"1700000600:", 0, "", false},
	{":u1", 0, "", false},
	{"u1", 0, "", false},
	{"1700000600", 0, "", false},
	{"01700000600:u", 0, "", false},
	{"-1:u", 0, "", false},
	{"+1:u", 0, "", false},
	{"17000006000:u", 0, "", false}, // 11 digits
	{"1e9:u", 0, "", false},
	{"1700000600:a\x00b", 0, "", false},
	{"1700000600:\xff", 0, "", false},
	{"1700000600:" + strings.Repeat("x", 257), 0, "", false},
}

func TestParseUsername(t *testing.T) {
	for _, tt := range usernameTests {
		expiry, user, err := parseUsername(tt.in)
		if (err == nil) != tt.ok || expiry != tt.expiry || user != tt.user {
			t.Errorf("parseUsername(%q) = %d, %q, %v; want %d, %q, ok=%v", tt.in, expiry, user, err, tt.expiry, tt.user, tt.ok)
		}
	}
}

// FuzzParseUsername: parsing never panics, and what parses round-trips
// through the form Credentials produces.
func FuzzParseUsername(f *testing.F) {
	for _, tt := range usernameTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		expiry, user, err := parseUsername(s)
		if err != nil {
			return
		}
		if expiry < 0 || !validUser(user) {
			t.Fatalf("parseUsername(%q) = %d, %q", s, expiry, user)
		}
		if back := strconv.FormatInt(expiry, 10) + ":" + user; back != s {
			t.Fatalf("parseUsername(%q) = %d, %q, which formats as %q", s, expiry, user, back)
		}
	})
}

// TestAuthRefusals: bad credentials get 401 (not pion's 400), over UDP and
// TCP; a rotated-out secret still works while it is a previous secret.
func TestAuthRefusals(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			ts := newTestServer(t, Config{}, serverOpts{tcp: true})
			now := time.Now()
			good := ts.creds(t, "alice", now)
			addr := turnAddr(t, good, transport)
			expired := ts.creds(t, "alice", now.Add(-time.Hour))
			otherSecret := strconv.FormatInt(now.Add(time.Minute).Unix(), 10) + ":alice"
			tests := []struct {
				name, username, password string
				reason                   Reason
			}{
				{"expired", expired.Username, expired.Credential, ReasonExpired},
				{"wrong password", good.Username, "not the password", ReasonAuth},
				{"unknown secret", otherSecret, password([]byte("some other secret"), otherSecret), ReasonAuth},
				{"not a REST username", "alice", password([]byte("test secret one"), "alice"), ReasonAuth},
				{"extended expiry", strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + ":alice", good.Credential, ReasonAuth},
				{"other user", strings.Replace(good.Username, "alice", "bob", 1), good.Credential, ReasonAuth},
			}
			for _, tt := range tests {
				c := dialRaw(t, transport, addr, tt.username, tt.password)
				before := ts.Stats().Refusals[tt.reason]
				if _, err := c.allocate(); codeOf(err) != 401 {
					t.Errorf("%s: Allocate = %v, want 401", tt.name, err)
				}
				if after := ts.Stats().Refusals[tt.reason]; after != before+1 {
					t.Errorf("%s: Refusals[%s] went from %d to %d, want +1", tt.name, tt.reason, before, after)
				}
			}
			c := dialRaw(t, transport, addr, good.Username, good.Credential)
			c.realm = "elsewhere"
			c.nonce = stun.NewNonce("00000000")
			if _, err := c.allocate(); codeOf(err) != 401 {
				t.Errorf("foreign realm: Allocate = %v, want 401", err)
			}
			if strings.Contains(ts.logs.String(), good.Credential) {
				t.Errorf("a credential reached the log")
			}
			if _, err := dialCreds(t, transport, good).allocate(); err != nil {
				t.Errorf("good credentials: Allocate = %v", err)
			}
		})
	}
}

// TestSecretRotation: after a rotation, credentials signed with the
// previous secret still allocate and keep their allocation alive; once the
// secret is dropped, they are refused.
func TestSecretRotation(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{})
	old := ts.creds(t, "alice", time.Now())
	live := dialCreds(t, "udp", old)
	if _, err := live.allocate(); err != nil {
		t.Fatal(err)
	}
	ts.secrets.rotate([]byte("test secret two"), true)
	fresh := ts.creds(t, "alice", time.Now())
	if fresh.Credential == old.Credential && fresh.Username == old.Username {
		t.Fatal("rotation did not change the credential")
	}
	for name, c := range map[string]Credentials{"previous": old, "current": fresh} {
		if _, err := dialCreds(t, "udp", c).allocate(); err != nil {
			t.Errorf("Allocate with %s secret: %v", name, err)
		}
	}
	if err := live.refresh(10 * time.Minute); err != nil {
		t.Errorf("Refresh of a live allocation after rotation: %v", err)
	}
	ts.secrets.rotate([]byte("test secret three"), false) // "two" is previous; "one" is gone
	if _, err := dialCreds(t, "udp", old).allocate(); codeOf(err) != 401 {
		t.Errorf("Allocate with a dropped secret = %v, want 401", err)
	}
	if err := live.refresh(10 * time.Minute); codeOf(err) != 401 {
		t.Errorf("Refresh with a dropped secret = %v, want 401", err)
	}
}

// TestExpiryOnlyForNewAllocations: once expired, credentials allocate no
// more, but the allocation they made may still be refreshed and given
// permissions, so a call outlives the TTL.
func TestExpiryOnlyForNewAllocations(t *testing.T) {
	ts := newTestServer(t, Config{AllowPeers: loopback}, serverOpts{})
	creds := ts.creds(t, "alice", time.Now())
	c := dialCreds(t, "udp", creds)
	if _, err := c.allocate(); err != nil {
		t.Fatal(err)
	}
	ts.skew.Store(int64(time.Hour))
	if err := c.refresh(10 * time.Minute); err != nil {
		t.Errorf("Refresh after expiry: %v", err)
	}
	if err := c.createPermission(netip.MustParseAddrPort("127.0.0.1:9")); err != nil {
		t.Errorf("CreatePermission after expiry: %v", err)
	}
	if _, err := dialCreds(t, "udp", creds).allocate(); codeOf(err) != 401 {
		t.Errorf("new Allocate after expiry = %v, want 401", err)
	}
	if n := ts.Stats().Refusals[ReasonExpired]; n != 1 {
		t.Errorf("Refusals[expired] = %d, want 1", n)
	}
}

// TestWrongUserOnAllocation: another user's credentials on an existing
// allocation's 5-tuple get 441.
func TestWrongUserOnAllocation(t *testing.T) {
	ts := newTestServer(t, Config{}, serverOpts{})
	c := dialCreds(t, "udp", ts.creds(t, "alice", time.Now()))
	if _, err := c.allocate(); err != nil {
		t.Fatal(err)
	}
	bob := ts.creds(t, "bob", time.Now())
	c.username, c.password = bob.Username, bob.Credential
	if err := c.refresh(time.Minute); codeOf(err) != 441 {
		t.Errorf("Refresh with another user's credentials = %v, want 441", err)
	}
}
