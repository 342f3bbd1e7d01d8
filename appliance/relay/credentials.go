package relay

import (
	"crypto/hmac"
	"crypto/md5" // the STUN long-term credential key is MD5 (RFC 5389)
	"crypto/rand"
	"crypto/sha1" // the TURN REST API signs with HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Credentials are what a WebRTC client needs to use the relay, shaped as an
// RTCIceServer (and as the TURN REST API response).
type Credentials struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	TTL        int      `json:"ttl"` // seconds
}

// maxUserLen bounds user IDs: the whole username must fit STUN's 513 bytes.
const maxUserLen = 256

// SecretSize is the length of secrets from GenerateSecret.
const SecretSize = 32

// GenerateSecret returns a new random shared secret for signing
// credentials.
func GenerateSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate TURN secret: %w", err)
	}
	return b, nil
}

// Credentials mints credentials for user, valid for new allocations until
// now plus the credential TTL, with URLs for every transport the server
// serves. host is the name or address the client reached Hearth by (a port
// in it is dropped); empty or unusable, the advertised relay address is used.
// user is the user or guest ID; it may not be empty, longer than 256 bytes,
// or contain control characters.
func (s *Server) Credentials(host, user string, now time.Time) (Credentials, error) {
	if !validUser(user) {
		return Credentials{}, fmt.Errorf("%w: %q", ErrBadUser, user)
	}
	current, _ := s.secrets()
	if len(current) == 0 {
		return Credentials{}, ErrNoSecret
	}
	username := strconv.FormatInt(now.Add(s.ttl).Unix(), 10) + ":" + user
	h := s.urlHost(host)
	var urls []string
	if s.udpPort != 0 {
		urls = append(urls, fmt.Sprintf("turn:%s:%d?transport=udp", h, s.udpPort))
	}
	if s.tcpPort != 0 {
		urls = append(urls, fmt.Sprintf("turn:%s:%d?transport=tcp", h, s.tcpPort))
	}
	if s.tlsPort != 0 {
		urls = append(urls, fmt.Sprintf("turns:%s:%d?transport=tcp", h, s.tlsPort))
	}
	if s.udpPort != 0 {
		urls = append(urls, fmt.Sprintf("stun:%s:%d", h, s.udpPort))
	}
	return Credentials{
		URLs:       urls,
		Username:   username,
		Credential: password(current, username),
		TTL:        int(s.ttl / time.Second),
	}, nil
}

// urlHost returns host ready for a TURN URL: without a port, IPv6 in
// brackets, or the advertised address when host is empty or not a plain
// DNS name or IP address.
func (s *Server) urlHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is6() && !a.Is4In6() {
			return "[" + a.WithZone("").String() + "]"
		}
		return a.Unmap().String()
	}
	if validHostname(host) {
		return host
	}
	return s.publicIP.String()
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// password is the TURN REST API password for username:
// base64(HMAC-SHA1(secret, username)).
func password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// longTermKey is the STUN long-term credential key,
// MD5(username ":" realm ":" password).
func longTermKey(username, realm, password string) []byte {
	h := md5.New()
	h.Write([]byte(username + ":" + realm + ":" + password))
	return h.Sum(nil)
}

var errUsername = errors.New(`TURN username is not "<unix-expiry>:<user>"`)

// parseUsername splits a TURN REST API username "<unix-expiry>:<user>".
// The expiry is decimal seconds without sign or leading zeros (up to
// 9999999999); the user is what Credentials accepts.
func parseUsername(s string) (expiry int64, user string, err error) {
	ts, user, ok := strings.Cut(s, ":")
	if !ok || ts == "" || len(ts) > 10 || (len(ts) > 1 && ts[0] == '0') {
		return 0, "", errUsername
	}
	for _, c := range ts {
		if c < '0' || c > '9' {
			return 0, "", errUsername
		}
	}
	if !validUser(user) {
		return 0, "", errUsername
	}
	expiry, err = strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", errUsername
	}
	return expiry, user, nil
}

func validUser(u string) bool {
	return u != "" && len(u) <= maxUserLen && utf8.ValidString(u) &&
		!strings.ContainsFunc(u, func(r rune) bool { return r < ' ' || r == 0x7f })
}
