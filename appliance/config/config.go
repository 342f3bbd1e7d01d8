package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults shown by the docs and flags.
const (
	DefaultConfigFile    = "/etc/hearth/hearth.toml"
	DefaultDataSystem    = "/var/lib/hearth"
	DefaultDataUser      = "./hearth-data"
	DefaultListenSystem  = ":443"
	DefaultListenUser    = ":8443"
	DefaultHTTPSystem    = ":80"
	DefaultHTTPUser      = ":8080"
	DefaultTURNListen    = ":3478"
	DefaultTLS           = TLSLocal
	DefaultName          = "hearth"
	DefaultSessionIdle   = 14 * 24 * time.Hour
	DefaultSessionMax    = 90 * 24 * time.Hour
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
)

// DefaultTransferCodeTTL is how long a guest pairing code lives.
const DefaultTransferCodeTTL = 10 * time.Minute

// TLS modes.
const (
	TLSOff     = "off"
	TLSLocal   = "local"
	TLSACME    = "acme"
	TLSTailnet = "tailnet"
)

// Config is Hearth's effective configuration. Build it with Load.
type Config struct {
	Data        string        // state directory
	Listen      string        // HTTPS (or plain HTTP with TLS off) address
	HTTPListen  string        // plain HTTP address: redirect and CA download
	TURNListen  string        // TURN/STUN address, UDP and TCP
	TLS         string        // off, local, acme or tailnet
	Name        string        // mDNS instance and host name
	MDNS        bool          // announce on the LAN
	Tailnet     bool          // join the tailnet
	URL         string        // base URL for links; empty derives it
	LogLevel    string        // debug, info, warn or error
	SessionIdle time.Duration // a session unused this long ends
	SessionMax  time.Duration // a session ends this long after sign-in

	TransferCodeTTL time.Duration // a guest transfer's pairing code lives this long

	VoiceListen   string // UDP address for calls; empty: listen's address on UDP
	RelayPorts    string // TURN relay port range, "min-max"
	RelayPublicIP string // address handed to TURN clients; empty: the LAN address

	ACMEDomain    string // tls = acme: the public name to certify
	ACMEEmail     string // tls = acme: contact for the ACME account
	ACMEDirectory string // tls = acme: the ACME CA's directory URL

	TailnetHostname    string // the node's name on the tailnet; empty: Name
	TailnetAuthKey     string // auth key for a new node (secret: redacted when printed)
	TailnetAuthKeyFile string // file holding the auth key
	TailnetLogUpload   bool   // let tsnet upload its logs to Tailscale
	TailnetControlURL  string // coordination server; empty: Tailscale's

	// File is the configuration file that was read, or "".
	File    string
	sources map[string]Source
}

// Source says where a value came from.
type Source string

// Sources, from weakest to strongest.
const (
	FromDefault Source = "default"
	FromFile    Source = "file"
	FromEnv     Source = "env"
	FromFlag    Source = "flag"
)

// Source reports where the value of key came from.
func (c *Config) Source(key string) Source {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return FromDefault
}

// Host describes the machine facts that choose defaults.
type Host struct {
	// System is true when running as root or as a systemd service: state
	// goes to /var/lib/hearth and the standard ports are used.
	System bool
	// StateDir is systemd's $STATE_DIRECTORY, used for data when set.
	StateDir string
}

// DetectHost reads the process's environment for Host facts.
func DetectHost(getenv func(string) string) Host {
	underSystemd := getenv("INVOCATION_ID") != "" || getenv("NOTIFY_SOCKET") != ""
	return Host{
		System:   os.Geteuid() == 0 || underSystemd,
		StateDir: strings.Split(getenv("STATE_DIRECTORY"), ":")[0],
	}
}

// Options tells Load where to look.
type Options struct {
	// File is the configuration file; "" means DefaultConfigFile when it
	// exists. FileRequired makes a missing file an error (it was named).
	File         string
	FileRequired bool
	// Getenv reads environment variables; nil reads none.
	Getenv func(string) string
	// Flags holds the flags given on the command line, by flag name
	// (e.g. "http-listen"), as text.
	Flags map[string]string
	Host  Host
}

// Error is a refused setting: the key, the value and why.
type Error struct {
	Key, Value string
	Source     Source
	Where      string // file name, env var or flag
	Reason     string
}

func (e *Error) Error() string {
	v := e.Value
	if k := keyByName(e.Key); k != nil && k.Secret {
		v = Redacted
	}
	return fmt.Sprintf("config: %s = %q (from %s): %s", e.Key, v, e.Where, e.Reason)
}

// ErrUnknownKey is wrapped by errors about keys Hearth does not know.
var ErrUnknownKey = errors.New("unknown key")

// Load builds the effective configuration.
func Load(opts Options) (*Config, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &Config{sources: map[string]Source{}}
	for _, k := range keys {
		if err := k.set(c, k.def(opts.Host)); err != nil {
			return nil, fmt.Errorf("config: default for %s: %w", k.Name, err)
		}
	}
	if err := c.loadFile(opts); err != nil {
		return nil, err
	}
	for _, k := range keys {
		env := k.Env()
		if v := getenv(env); v != "" {
			if err := k.set(c, v); err != nil {
				return nil, &Error{Key: k.Name, Value: v, Source: FromEnv, Where: "environment " + env, Reason: err.Error()}
			}
			c.sources[k.Name] = FromEnv
		}
	}
	for name, v := range opts.Flags {
		k := keyByFlag(name)
		if k == nil {
			continue // not a config flag
		}
		if err := k.set(c, v); err != nil {
			return nil, &Error{Key: k.Name, Value: v, Source: FromFlag, Where: "flag --" + name, Reason: err.Error()}
		}
		c.sources[k.Name] = FromFlag
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) loadFile(opts Options) error {
	path := opts.File
	if path == "" {
		path = DefaultConfigFile
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		if !opts.FileRequired && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	c.File = path
	return c.apply(path, string(raw))
}

// apply reads configuration file text over c.
func (c *Config) apply(where, text string) error {
	var m map[string]any
	if _, err := toml.Decode(text, &m); err != nil {
		return fmt.Errorf("config: %s: %w", where, err)
	}
	for name, v := range m {
		k := keyByName(name)
		if k == nil {
			return fmt.Errorf("config: %s: %w %q (see `hearth config print` for the keys)", where, ErrUnknownKey, name)
		}
		text, err := k.fromTOML(v)
		if err == nil {
			err = k.set(c, text)
		}
		if err != nil {
			return &Error{Key: name, Value: fmt.Sprint(v), Source: FromFile, Where: where, Reason: err.Error()}
		}
		c.sources[name] = FromFile
	}
	return nil
}

// Parse decodes configuration file text on top of the defaults for host.
// It is Load without the environment and flags.
func Parse(text string, host Host) (*Config, error) {
	c := &Config{sources: map[string]Source{}}
	for _, k := range keys {
		if err := k.set(c, k.def(host)); err != nil {
			return nil, err
		}
	}
	if err := c.apply("config", text); err != nil {
		return nil, err
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	if c.SessionIdle > c.SessionMax {
		return &Error{Key: "session_idle", Value: c.SessionIdle.String(), Source: c.Source("session_idle"),
			Where: string(c.Source("session_idle")), Reason: "must not be longer than session_max (" + c.SessionMax.String() + ")"}
	}
	return nil
}

// Value returns the text form of key's value.
func (c *Config) Value(key string) string {
	if k := keyByName(key); k != nil {
		return k.get(c)
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func parseAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("want host:port or :port: %v", strings.TrimPrefix(err.Error(), "address "+s+": "))
	}
	if host != "" && net.ParseIP(host) == nil && !nameRE.MatchString(strings.ToLower(host)) {
		return "", fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return s, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 30m, 12h or 720h")
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive")
	}
	return d, nil
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("want true or false")
	}
	return b, nil
}

func oneOf(s string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
}

func parseURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("want an absolute http:// or https:// URL")
	}
	return strings.TrimRight(s, "/"), nil
}

// BaseURL is the URL links should use: the configured url, or one derived
// from the name, TLS mode and listen port.
func (c *Config) BaseURL() string {
	if c.URL != "" {
		return c.URL
	}
	scheme, std := "https", "443"
	if c.TLS == TLSOff {
		scheme, std = "http", "80"
	}
	host := c.Name + ".local"
	if h, _, _ := net.SplitHostPort(c.Listen); h == "127.0.0.1" || h == "::1" || h == "localhost" {
		host = "localhost"
	}
	if _, port, _ := net.SplitHostPort(c.Listen); port != std && port != "" {
		host = net.JoinHostPort(host, port)
	}
	return scheme + "://" + host
}

// VoiceAddr is the UDP address voice calls use: voice_listen, or the
// listen address's host and port on UDP (one port number for firewalls).
func (c *Config) VoiceAddr() string {
	if c.VoiceListen != "" {
		return c.VoiceListen
	}
	return c.Listen
}
