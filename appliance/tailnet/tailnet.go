package tailnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Defaults shown by the docs and flags.
const (
	// DefaultHostname is the node's name on the tailnet when
	// Config.Hostname is empty: https://hearth.<tailnet>.ts.net.
	DefaultHostname = "hearth"
	// MaxHostnameLen is the longest Config.Hostname accepted (a DNS label).
	MaxHostnameLen = 63
)

// Sentinel errors. Use errors.Is to test for them.
var (
	// ErrNotBuilt is returned by New in a binary built with the
	// hearth_notailnet tag.
	ErrNotBuilt = errors.New("this build of Hearth omits the tailnet (built with the hearth_notailnet tag)")
	// ErrClosed is returned by a Node's methods after Close.
	ErrClosed = errors.New("tailnet node is closed")
	// ErrNotStarted is returned by Listen, ListenPacket and WhoIs before
	// Start.
	ErrNotStarted = errors.New("tailnet node is not started")
	// ErrNotRunning is returned when the node must be up on the tailnet
	// (to know its own name or addresses) and is not, yet or any more.
	ErrNotRunning = errors.New("tailnet node is not connected to the tailnet")
	// ErrNeedsLogin is returned by Start when the tailnet wants an
	// interactive login: no auth key was given for a new node, or the
	// node's key expired. The node keeps waiting; Status.AuthURL is the
	// page where a tailnet member logs it in.
	ErrNeedsLogin = errors.New("tailnet node needs to be logged in")
	// ErrNeedsApproval is returned by Start when the node is logged in
	// but the tailnet admin must approve it (device approval). The node
	// keeps waiting and comes up once approved.
	ErrNeedsApproval = errors.New("tailnet node is waiting for the tailnet admin's approval")
	// ErrAuth is returned by Start when the coordination server refused
	// to log the node in, e.g. for an invalid, expired or used-up auth
	// key. The node is stopped; Status.LastError has the server's words.
	ErrAuth = errors.New("tailnet login refused")
	// ErrNotTailnet is returned by IdentifyRequest for a request that did
	// not come in over one of this node's listeners, and by WhoIs for an
	// address that is not a peer on the tailnet.
	ErrNotTailnet = errors.New("not a peer on the tailnet")
	// ErrNoCertificate is returned by GetCertificate for a server name
	// the tailnet does not issue certificates for.
	ErrNoCertificate = errors.New("the tailnet has no certificate for this name")
)

// Config configures a Node. The zero value of every field but Dir means its
// documented default.
type Config struct {
	// Hostname is the node's name on the tailnet, the first label of
	// its MagicDNS name (<Hostname>.<tailnet>.ts.net); empty means
	// DefaultHostname. A DNS label: letters, digits and inner hyphens. The
	// tailnet may add a suffix (hearth-1) when the name is taken; DNSName
	// tells the name held.
	Hostname string
	// Dir is the node's state directory (node key, certificates), created
	// 0700 when missing. Required; Hearth uses <data>/tailnet. Deleting it
	// makes the node a new device on the tailnet.
	Dir string
	// AuthKey logs a new node in to the tailnet without a browser (an
	// auth key from the tailnet admin console). It is used only while the
	// node has no state in Dir yet; later starts reuse the node key.
	// Empty means AuthKeyFile, then the TS_AUTHKEY environment variable
	// (read by tsnet itself), then an interactive login (Status.AuthURL).
	AuthKey string
	// AuthKeyFile names a file holding the auth key (surrounding space is
	// trimmed). It is read by Start, so a missing or unreadable file is a
	// Start error and Hearth keeps serving the LAN. Mutually exclusive
	// with AuthKey.
	AuthKeyFile string
	// ControlURL is the coordination server; empty means Tailscale's
	// (or TS_CONTROL_URL). Set it for Headscale.
	ControlURL string
	// LogUpload lets tsnet upload its debug logs to Tailscale's log
	// service (for Tailscale's support). Off by default: see the package
	// documentation. Turning it off is process-wide and lasts until the
	// process exits, so a later Node in the same process cannot turn it
	// back on (New refuses).
	LogUpload bool
	// Ephemeral makes the node ephemeral: the tailnet removes it soon
	// after it goes offline. For tests and throwaway boxes.
	Ephemeral bool
	// Port is the UDP port for WireGuard and peer-to-peer traffic on the
	// host; zero picks a free one at every start. Set it to forward a
	// fixed port through a firewall.
	Port uint16
	// FetchCertificate fetches the tailnet's certificate for DNSName (and
	// renews it) in the background as soon as the node is up, so the
	// first visitor does not wait for it: set it with TLS mode tailnet.
	// Without it GetCertificate fetches on first use. Either way the
	// certificate comes from Let's Encrypt, which publishes the name in
	// its public Certificate Transparency logs.
	FetchCertificate bool
	// OnStateChange, when set, is called with a snapshot each time the
	// node's State changes (quick successive changes may come as one), in
	// order, one call at a time, from Start, Close or the node's own
	// goroutine: use
	// it to bind the UDP listeners (which need the node's address) once
	// it is running, to add DNSName to the certificates, to update
	// readiness. It must return quickly and must not call Close.
	OnStateChange func(Status)
	// Logger receives the node's log: state changes at info, problems at
	// warn and error, tsnet's own (verbose) log at debug, and only when
	// the handler has debug enabled. nil discards it.
	Logger *slog.Logger

	// authKeyFromEnv reads the key tsnet would take from the environment
	// (nil: os.Getenv of TS_AUTHKEY and TS_AUTH_KEY). Tests replace it.
	authKeyFromEnv func() string
}

// hostnameRE matches a DNS label of letters, digits and inner hyphens.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

func (c *Config) validate() error {
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if len(c.Hostname) > MaxHostnameLen || !hostnameRE.MatchString(c.Hostname) {
		return fmt.Errorf("tailnet hostname %q: want letters, digits and inner hyphens, at most %d long", c.Hostname, MaxHostnameLen)
	}
	c.Hostname = strings.ToLower(c.Hostname)
	if c.Dir == "" {
		return errors.New("tailnet: no state directory")
	}
	if c.AuthKey != "" && c.AuthKeyFile != "" {
		return errors.New("tailnet: both an auth key and an auth key file are set; set one")
	}
	if c.AuthKey != "" {
		if err := checkAuthKey(c.AuthKey); err != nil {
			return fmt.Errorf("tailnet auth key: %w", err)
		}
	}
	if c.ControlURL != "" {
		u, err := url.Parse(c.ControlURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("tailnet control URL %q: want an http or https URL", c.ControlURL)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.authKeyFromEnv == nil {
		c.authKeyFromEnv = func() string {
			if k := os.Getenv("TS_AUTHKEY"); k != "" {
				return k
			}
			return os.Getenv("TS_AUTH_KEY")
		}
	}
	return nil
}

// checkAuthKey refuses what cannot be an auth key, without saying what the
// key is. Keys are not checked further: Headscale's keys look different
// from Tailscale's tskey-auth-….
func checkAuthKey(k string) error {
	if strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("contains spaces or control characters")
	}
	return nil
}

// State is where a Node is in its life.
type State string

// States, in the order they usually come.
const (
	StateStopped       State = "stopped"        // not started, or closed
	StateStarting      State = "starting"       // logging in, connecting
	StateNeedsLogin    State = "needs_login"    // waiting for a login at AuthURL
	StateNeedsApproval State = "needs_approval" // waiting for the tailnet admin
	StateRunning       State = "running"        // up on the tailnet
	StateFailed        State = "failed"         // gave up; LastError says why
)

// Status is a snapshot of a Node for /readyz, `hearth doctor` and the admin
// UI. It holds no secrets.
type Status struct {
	State State `json:"state"`
	// Hostname is the name asked for (Config.Hostname).
	Hostname string `json:"hostname"`
	// DNSName is the node's MagicDNS name without the trailing dot, e.g.
	// "hearth.tail1234.ts.net"; empty until the node is up.
	DNSName string `json:"dns_name,omitempty"`
	// Tailnet is the tailnet's name, e.g. "family@example.com".
	Tailnet string `json:"tailnet,omitempty"`
	// Addrs are the node's tailnet addresses (an IPv4 in 100.64.0.0/10
	// and an IPv6 in fd7a:115c:a1e0::/48).
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// CertDomains are the names the tailnet issues certificates for;
	// empty when HTTPS is not enabled in the tailnet's admin console (then
	// only the local CA can serve DNSName).
	CertDomains []string `json:"cert_domains,omitempty"`
	// MagicDNS is whether the tailnet has MagicDNS on (needed for members
	// to resolve DNSName).
	MagicDNS bool `json:"magic_dns"`
	// AuthURL is where a tailnet member logs the node in, in
	// StateNeedsLogin.
	AuthURL string `json:"auth_url,omitempty"`
	// AuthKeySource says where the auth key came from: "config", "file",
	// "env", or "" when none was given.
	AuthKeySource string `json:"auth_key_source,omitempty"`
	// KeyExpiry is when the node's key expires and it must be logged in
	// again; zero when it does not expire (or is not known yet).
	KeyExpiry time.Time `json:"key_expiry,omitzero"`
	// LogUpload is whether tsnet's logs go to Tailscale's log service.
	LogUpload bool `json:"log_upload"`
	// Health lists tsnet's current warnings (e.g. no DERP connection).
	Health []string `json:"health,omitempty"`
	// LastError is the last problem met, e.g. a refused auth key; empty
	// while running without one.
	LastError string `json:"last_error,omitempty"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
}

// Identity is who is behind a peer on the tailnet: the user logged in on
// that device and the device itself.
type Identity struct {
	// UserID is the tailnet's stable numeric ID of the user; 0 for a
	// tagged device.
	UserID int64 `json:"user_id"`
	// LoginName is the user's login, e.g. "alice@example.com" or
	// "alice@github"; empty for a tagged device. Map this to a Hearth
	// account.
	LoginName string `json:"login_name"`
	// DisplayName is the user's name for display, e.g. "Alice Smith".
	DisplayName string `json:"display_name"`
	// NodeName is the device's MagicDNS name without the trailing dot,
	// e.g. "alices-phone.tail1234.ts.net".
	NodeName string `json:"node_name"`
	// NodeID is the tailnet's stable ID of the device.
	NodeID string `json:"node_id"`
	// Tags are the device's ACL tags. A tagged device belongs to the
	// tailnet, not to a person: LoginName is empty, and signing in by
	// tailnet identity must refuse it (see IsPerson).
	Tags []string `json:"tags,omitempty"`
	// Addr is the address asked about, without port.
	Addr netip.Addr `json:"addr"`
}

// IsPerson reports whether the identity is a user's device (not a tagged
// one), the only kind that may be signed in as a Hearth account.
func (id Identity) IsPerson() bool { return len(id.Tags) == 0 && id.LoginName != "" && id.UserID != 0 }
