package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// PortRange parses "min-max" into its bounds.
func PortRange(s string) (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(s, "-")
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if !ok || err1 != nil || err2 != nil || x == 0 || x > y {
		return 0, 0, fmt.Errorf("want a port range like 49160-49200")
	}
	return uint16(x), uint16(y), nil
}

// Kind is the type a key's value has in the file.
type Kind string

// Kinds of value.
const (
	KindString   Kind = "string"
	KindBool     Kind = "bool"
	KindDuration Kind = "duration"
)

// Key describes one setting: its file key, flag, environment variable and
// default.
type Key struct {
	Name string // file key, e.g. http_listen
	Kind Kind
	Help string
	// Secret marks a value that never reaches logs or `config print`.
	Secret bool
	def    func(Host) string
	set    func(*Config, string) error
	get    func(*Config) string
}

// Flag is the command-line flag name, e.g. http-listen.
func (k *Key) Flag() string { return strings.ReplaceAll(k.Name, "_", "-") }

// Env is the environment variable, e.g. HEARTH_HTTP_LISTEN.
func (k *Key) Env() string { return "HEARTH_" + strings.ToUpper(k.Name) }

// Default returns the key's default on host.
func (k *Key) Default(h Host) string { return k.def(h) }

func (k *Key) fromTOML(v any) (string, error) {
	switch k.Kind {
	case KindBool:
		if b, ok := v.(bool); ok {
			return fmt.Sprint(b), nil
		}
		return "", fmt.Errorf("want true or false (without quotes)")
	default:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return "", fmt.Errorf("want a quoted string")
	}
}

// Keys lists every setting in the order the docs show them.
func Keys() []Key { return append([]Key(nil), keys...) }

func keyByName(name string) *Key {
	for i := range keys {
		if keys[i].Name == name {
			return &keys[i]
		}
	}
	return nil
}

func keyByFlag(flag string) *Key {
	return keyByName(strings.ReplaceAll(flag, "-", "_"))
}

// secret marks k as a secret.
func secret(k Key) Key { k.Secret = true; return k }

// Redacted is how a secret value that is set is printed.
const Redacted = "(redacted)"

// shown is k's value as printed: a set secret is Redacted.
func (k *Key) shown(c *Config) string {
	v := k.get(c)
	if k.Secret && v != "" {
		return Redacted
	}
	return v
}

func constant(v string) func(Host) string { return func(Host) string { return v } }

func bySystem(system, user string) func(Host) string {
	return func(h Host) string {
		if h.System {
			return system
		}
		return user
	}
}

func strKey(name, help string, def func(Host) string, field func(*Config) *string, parse func(string) (string, error)) Key {
	return Key{Name: name, Kind: KindString, Help: help, def: def,
		set: func(c *Config, s string) error {
			v, err := parse(s)
			if err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return *field(c) },
	}
}

func boolKey(name, help string, def bool, field func(*Config) *bool) Key {
	return Key{Name: name, Kind: KindBool, Help: help, def: constant(fmt.Sprint(def)),
		set: func(c *Config, s string) error {
			v, err := parseBool(s)
			*field(c) = v
			return err
		},
		get: func(c *Config) string { return fmt.Sprint(*field(c)) },
	}
}

func durKey(name, help string, def time.Duration, field func(*Config) *time.Duration) Key {
	return Key{Name: name, Kind: KindDuration, Help: help, def: constant(def.String()),
		set: func(c *Config, s string) error {
			v, err := parseDuration(s)
			*field(c) = v
			return err
		},
		get: func(c *Config) string { return field(c).String() },
	}
}

// within bounds a duration key to [lo, hi].
func within(k Key, lo, hi time.Duration) Key {
	set := k.set
	k.set = func(c *Config, s string) error {
		if d, err := parseDuration(s); err == nil && (d < lo || d > hi) {
			return fmt.Errorf("want a duration from %v to %v", lo, hi)
		}
		return set(c, s)
	}
	return k
}

var keys = []Key{
	strKey("data", "state directory: database, attachments, certificates",
		func(h Host) string {
			switch {
			case h.StateDir != "":
				return h.StateDir
			case h.System:
				return DefaultDataSystem
			}
			return DefaultDataUser
		},
		func(c *Config) *string { return &c.Data },
		func(s string) (string, error) {
			if strings.TrimSpace(s) == "" {
				return "", fmt.Errorf("must not be empty")
			}
			return s, nil
		}),
	strKey("listen", "HTTPS address (plain HTTP when tls = \"off\")",
		bySystem(DefaultListenSystem, DefaultListenUser), func(c *Config) *string { return &c.Listen }, parseAddr),
	strKey("http_listen", "plain HTTP address: redirect to HTTPS and CA download",
		bySystem(DefaultHTTPSystem, DefaultHTTPUser), func(c *Config) *string { return &c.HTTPListen }, parseAddr),
	strKey("turn_listen", "TURN/STUN address, UDP and TCP",
		constant(DefaultTURNListen), func(c *Config) *string { return &c.TURNListen }, parseAddr),
	strKey("tls", "TLS mode: off, local (own CA), acme or tailnet",
		constant(DefaultTLS), func(c *Config) *string { return &c.TLS },
		func(s string) (string, error) { return oneOf(s, TLSOff, TLSLocal, TLSACME, TLSTailnet) }),
	strKey("name", "mDNS instance and host name (name.local)",
		constant(DefaultName), func(c *Config) *string { return &c.Name },
		func(s string) (string, error) {
			if !nameRE.MatchString(s) {
				return "", fmt.Errorf("want 1-63 lowercase letters, digits and inner dashes")
			}
			return s, nil
		}),
	boolKey("mdns", "announce Hearth on the LAN over mDNS", true, func(c *Config) *bool { return &c.MDNS }),
	boolKey("tailnet", "join the household's tailnet for remote access", false, func(c *Config) *bool { return &c.Tailnet }),
	strKey("url", "base URL used in links Hearth prints (empty: derived from name and listen)",
		constant(""), func(c *Config) *string { return &c.URL }, parseURL),
	strKey("log_level", "log level: debug, info, warn or error",
		constant("info"), func(c *Config) *string { return &c.LogLevel },
		func(s string) (string, error) { return oneOf(s, "debug", "info", "warn", "error") }),
	strKey("voice_listen", "UDP address for voice calls (empty: the listen address, on UDP)",
		constant(""), func(c *Config) *string { return &c.VoiceListen },
		func(s string) (string, error) {
			if s == "" {
				return s, nil
			}
			return parseAddr(s)
		}),
	strKey("relay_ports", "TURN relay ports, a range like 49160-49200 (UDP)",
		constant("49160-49200"), func(c *Config) *string { return &c.RelayPorts },
		func(s string) (string, error) {
			if _, _, err := PortRange(s); err != nil {
				return "", err
			}
			return s, nil
		}),
	strKey("relay_public_ip", "IPv4 address TURN clients are told to use (behind port forwarding); empty: the LAN address",
		constant(""), func(c *Config) *string { return &c.RelayPublicIP },
		func(s string) (string, error) {
			if s == "" {
				return s, nil
			}
			if ip := net.ParseIP(s); ip == nil || ip.To4() == nil {
				return "", fmt.Errorf("want an IPv4 address")
			}
			return s, nil
		}),
	strKey("acme_domain", "tls = \"acme\": the public domain to get a certificate for",
		constant(""), func(c *Config) *string { return &c.ACMEDomain },
		func(s string) (string, error) {
			if s != "" && !strings.Contains(s, ".") {
				return "", fmt.Errorf("want a fully qualified domain name")
			}
			return strings.ToLower(s), nil
		}),
	strKey("acme_email", "tls = \"acme\": contact e-mail for the ACME account (optional)",
		constant(""), func(c *Config) *string { return &c.ACMEEmail },
		func(s string) (string, error) {
			if s != "" && !strings.Contains(s, "@") {
				return "", fmt.Errorf("want an e-mail address")
			}
			return s, nil
		}),
	strKey("acme_directory", "tls = \"acme\": the ACME CA's directory URL",
		constant(DefaultACMEDirectory), func(c *Config) *string { return &c.ACMEDirectory }, parseURL),
	strKey("tailnet_hostname", "the node's name on the tailnet (hostname.<tailnet>.ts.net); empty: the name",
		constant(""), func(c *Config) *string { return &c.TailnetHostname },
		func(s string) (string, error) {
			if s != "" && !nameRE.MatchString(s) {
				return "", fmt.Errorf("want 1-63 lowercase letters, digits and inner dashes")
			}
			return s, nil
		}),
	secret(strKey("tailnet_auth_key", "auth key that logs a new tailnet node in (secret; prefer tailnet_auth_key_file)",
		constant(""), func(c *Config) *string { return &c.TailnetAuthKey },
		func(s string) (string, error) {
			if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return "", fmt.Errorf("contains spaces or control characters")
			}
			return s, nil
		})),
	strKey("tailnet_auth_key_file", "file holding the tailnet auth key (read at start)",
		constant(""), func(c *Config) *string { return &c.TailnetAuthKeyFile },
		func(s string) (string, error) { return s, nil }),
	boolKey("tailnet_log_upload", "let the tailnet node upload its logs to Tailscale (off: no logs leave the box)", false,
		func(c *Config) *bool { return &c.TailnetLogUpload }),
	strKey("tailnet_control_url", "tailnet coordination server URL (empty: Tailscale's; set for Headscale)",
		constant(""), func(c *Config) *string { return &c.TailnetControlURL }, parseURL),
	durKey("session_idle", "a signed-in device unused this long is signed out",
		DefaultSessionIdle, func(c *Config) *time.Duration { return &c.SessionIdle }),
	durKey("session_max", "a signed-in device is signed out this long after sign-in",
		DefaultSessionMax, func(c *Config) *time.Duration { return &c.SessionMax }),
	within(durKey("transfer_code_ttl", "a guest's file transfer pairing code expires this long after it is made",
		DefaultTransferCodeTTL, func(c *Config) *time.Duration { return &c.TransferCodeTTL }), time.Minute, 24*time.Hour),
}
