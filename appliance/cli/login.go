package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
	"golang.org/x/term"
)

// credentials are what `hearth login` stores for the other client
// commands, in $XDG_CONFIG_HOME/hearth/cli.json (mode 0600).
type credentials struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	User  string `json:"user,omitempty"`
	// CA is the appliance's local CA (PEM) the user chose to trust; when
	// set it is the only root accepted for URL (pinned).
	CA string `json:"ca,omitempty"`
}

func credentialsPath(env *Env) (string, error) {
	dir := env.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := env.Getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set; cannot find where to keep the login")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "hearth", "cli.json"), nil
}

func loadCredentials(env *Env) (credentials, error) {
	var c credentials
	p, err := credentialsPath(env)
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read login: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("read login %s: %w", p, err)
	}
	return c, nil
}

func saveCredentials(env *Env, c credentials) (string, error) {
	p, err := credentialsPath(env)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("save login: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("save login: %w", err)
	}
	return p, nil
}

// clientFlags are the connection flags of send and receive.
func clientFlags(fs *flag.FlagSet) {
	fs.String("url", "", "the appliance's address (overrides the login; also HEARTH_URL)")
	fs.String("token", "", "a personal access token (overrides the login; also HEARTH_TOKEN)")
	fs.String("ca", "", "trust this CA certificate (PEM file) for the appliance's HTTPS")
}

// userAgent names the command line to the appliance (its device name
// becomes "hearth CLI").
const userAgent = "hearth/cli"

// remote is the appliance's HTTP API as a client sees it.
type remote struct {
	base   string // scheme://host[:port], no trailing slash
	token  string
	tls    *tls.Config // nil: the system's roots
	client *http.Client
}

func newRemote(base, token string, tlsConfig *tls.Config) *remote {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	return &remote{base: strings.TrimRight(base, "/"), token: token, tls: tlsConfig,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// pinnedTLS trusts only the CA in pemData.
func pinnedTLS(pemData []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("the CA file holds no PEM certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// connect returns the appliance a logged-in command talks to: the login,
// with --url/HEARTH_URL, --token/HEARTH_TOKEN and --ca overriding it.
func connect(env *Env, fs *flag.FlagSet, needToken bool) (*remote, credentials, error) {
	c, err := loadCredentials(env)
	if err != nil {
		return nil, c, err
	}
	pick := func(flagName, envName string, cur *string) {
		if v := env.Getenv(envName); v != "" {
			*cur = v
		}
		if f := fs.Lookup(flagName); f != nil && f.Value.String() != "" {
			*cur = f.Value.String()
		}
	}
	loginURL := c.URL
	pick("url", "HEARTH_URL", &c.URL)
	pick("token", "HEARTH_TOKEN", &c.Token)
	if c.URL != loginURL && c.CA != "" && !sameHost(c.URL, loginURL) {
		c.CA = "" // the pinned CA belongs to the logged-in appliance
	}
	if c.URL == "" {
		return nil, c, usagef("no appliance: run `hearth login URL` first, or pass --url")
	}
	if needToken && c.Token == "" {
		return nil, c, usagef("not logged in: run `hearth login %s` first, or pass --token", c.URL)
	}
	base, err := baseURL(c.URL)
	if err != nil {
		return nil, c, err
	}
	c.URL = base
	var tc *tls.Config
	if f := fs.Lookup("ca"); f != nil && f.Value.String() != "" {
		b, err := os.ReadFile(f.Value.String())
		if err != nil {
			return nil, c, fmt.Errorf("read --ca: %w", err)
		}
		c.CA = string(b)
	}
	if c.CA != "" {
		if tc, err = pinnedTLS([]byte(c.CA)); err != nil {
			return nil, c, err
		}
	}
	return newRemote(base, c.Token, tc), c, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host == ub.Host
}

// baseURL normalises an address ("hearth.local", "https://hearth.local:8443/")
// to scheme://host[:port].
func baseURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", usagef("%q is not an appliance address such as https://hearth.local", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the appliance answered %d", e.Status)
	}
	return strings.TrimSuffix(e.Message, ".")
}

// do sends a JSON request and decodes the JSON answer into out.
func (r *remote) do(ctx context.Context, method, path string, header http.Header, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	return r.doRaw(ctx, method, path, header, "application/json", rd, out)
}

func (r *remote) doRaw(ctx context.Context, method, path string, header http.Header, ctype string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", userAgent)
	if r.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(raw, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// wsURL is the realtime connection's address.
func (r *remote) wsURL() string { return r.base + "/api/v1/ws" }

// prompter asks questions on the terminal (or reads answers from stdin).
type prompter struct {
	env *Env
	in  *bufio.Reader
}

func newPrompter(env *Env) *prompter { return &prompter{env: env, in: bufio.NewReader(env.Stdin)} }

func (p *prompter) line(question string) (string, error) {
	fmt.Fprint(p.env.Stderr, question)
	s, err := p.in.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("read answer: %w", err)
	}
	return strings.TrimSpace(s), nil
}

func (p *prompter) yes(question string) (bool, error) {
	a, err := p.line(question + " [y/N] ")
	if err != nil {
		return false, err
	}
	a = strings.ToLower(a)
	return a == "y" || a == "yes", nil
}

// password reads a password without echo from a terminal.
func (p *prompter) password(question string) (string, error) {
	f, ok := p.env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("stdin is not a terminal: pass the password with --password-stdin")
	}
	fmt.Fprint(p.env.Stderr, question)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(p.env.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// trustCA finds the CA of an HTTPS appliance whose certificate the system
// does not trust: from caFile, or downloaded from /ca.crt on the plain-HTTP
// port. It shows the fingerprint and asks (unless trust is set).
func trustCA(ctx context.Context, env *Env, p *prompter, base, caFile string, trust bool) ([]byte, error) {
	var pemData []byte
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		pemData = b
	} else {
		b, err := fetchCA(ctx, base)
		if err != nil {
			return nil, err
		}
		pemData = b
	}
	blk, _ := pem.Decode(pemData)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("the CA is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse the CA: %w", err)
	}
	fmt.Fprintf(env.Stderr, "The appliance uses its own certificate authority %q.\nSHA-256 fingerprint: %s\n"+
		"Compare it with the one on the appliance's Connect page or in `hearth doctor` there.\n", cert.Subject.CommonName, certs.Fingerprint(cert.Raw))
	if !trust {
		ok, err := p.yes("Trust this CA for " + base + "?")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("the CA was not trusted; nothing was stored")
		}
	}
	return pemData, nil
}

// fetchCA downloads /ca.crt from the appliance's plain-HTTP port (80 next
// to 443, 8080 next to 8443; both tried otherwise).
func fetchCA(ctx context.Context, base string) ([]byte, error) {
	u, _ := url.Parse(base)
	host, port := u.Hostname(), u.Port()
	ports := []string{"80", "8080"}
	switch port {
	case "", "443":
		ports = []string{"80"}
	case "8443":
		ports = []string{"8080"}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var errs []error
	for _, p := range ports {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+net.JoinHostPort(host, p)+"/ca.crt", nil)
		req.Header.Set("User-Agent", userAgent)
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err == nil && resp.StatusCode == 200 {
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %s", req.URL, resp.Status))
	}
	return nil, fmt.Errorf("download the appliance's CA (pass --ca FILE instead): %w", errors.Join(errs...))
}

// untrusted reports a TLS failure caused by an unknown authority.
func untrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &cv)
}

// probe checks the appliance answers, and on HTTPS with an unknown CA
// gets the user's trust in its local CA (returned, else nil).
func probe(ctx context.Context, env *Env, p *prompter, r *remote, caFile string, trust bool) (*remote, []byte, error) {
	if caFile != "" && strings.HasPrefix(r.base, "https://") {
		ca, err := trustCA(ctx, env, p, r.base, caFile, true)
		if err != nil {
			return nil, nil, err
		}
		tc, err := pinnedTLS(ca)
		if err != nil {
			return nil, nil, err
		}
		r = newRemote(r.base, r.token, tc)
		return r, ca, r.do(ctx, "GET", "/api/v1/status", nil, nil, nil)
	}
	err := r.do(ctx, "GET", "/api/v1/status", nil, nil, nil)
	if err == nil || !untrusted(err) {
		return r, nil, err
	}
	ca, err := trustCA(ctx, env, p, r.base, "", trust)
	if err != nil {
		return nil, nil, err
	}
	tc, err := pinnedTLS(ca)
	if err != nil {
		return nil, nil, err
	}
	r = newRemote(r.base, r.token, tc)
	if err := r.do(ctx, "GET", "/api/v1/status", nil, nil, nil); err != nil {
		return nil, nil, fmt.Errorf("the appliance's certificate does not match its CA: %w", err)
	}
	return r, ca, nil
}

func newLoginCommand() *command {
	return &command{
		name: "login", args: "URL", summary: "sign in the command line (send, receive) to an appliance",
		long: "Asks for your name and password, creates a personal access token and keeps it with the address in\n" +
			"$XDG_CONFIG_HOME/hearth/cli.json (mode 0600). When the appliance uses its own certificate authority,\n" +
			"its fingerprint is shown and, once trusted, the CA is kept and pinned for later commands.",
		flags: func(fs *flag.FlagSet) {
			fs.String("name", "", "your account name (asked when not given)")
			fs.Bool("password-stdin", false, "read the password from stdin (first line)")
			fs.String("ca", "", "trust this CA certificate (PEM file) instead of downloading /ca.crt")
			fs.Bool("trust-ca", false, "trust the appliance's CA without asking")
		},
		run: runLogin,
	}
}

func runLogin(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usagef("login takes the appliance's URL, e.g. hearth login https://hearth.local:8443")
	}
	base, err := baseURL(args[0])
	if err != nil {
		return err
	}
	p := newPrompter(env)
	r, ca, err := probe(ctx, env, p, newRemote(base, "", nil), fs.Lookup("ca").Value.String(), fs.Lookup("trust-ca").Value.String() == "true")
	if err != nil {
		return fmt.Errorf("reach %s: %w", base, err)
	}
	name := fs.Lookup("name").Value.String()
	if name == "" {
		if name, err = p.line("Name: "); err != nil {
			return err
		}
	}
	var password string
	if fs.Lookup("password-stdin").Value.String() == "true" {
		if password, err = p.line(""); err != nil {
			return err
		}
	} else if password, err = p.password("Password: "); err != nil {
		return err
	}
	if name == "" || password == "" {
		return usagef("a name and a password are needed")
	}
	// Sign in (a short-lived session), create the token with it, then end
	// the session: only the token remains.
	var si struct {
		CSRF string `json:"csrf"`
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	req := map[string]string{"name": name, "password": password}
	hdr := http.Header{"X-Hearth-Csrf": {"1"}}
	jarRemote := *r
	jarRemote.client = cloneWithJar(r.client)
	if err := jarRemote.do(ctx, "POST", "/api/v1/auth/login", hdr, req, &si); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	host, _ := os.Hostname()
	var tok struct {
		Token string `json:"token"`
	}
	hdr = http.Header{"X-Hearth-Csrf": {si.CSRF}}
	if err := jarRemote.do(ctx, "POST", "/api/v1/tokens", hdr, map[string]string{"name": "hearth CLI on " + host}, &tok); err != nil {
		return fmt.Errorf("create an access token: %w", err)
	}
	jarRemote.do(ctx, "POST", "/api/v1/auth/logout", hdr, nil, nil)
	path, err := saveCredentials(env, credentials{URL: base, Token: tok.Token, User: si.User.Name, CA: string(ca)})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Logged in to %s as %s; the token is kept in %s.\n", base, si.User.Name, path)
	return nil
}

func cloneWithJar(c *http.Client) *http.Client {
	cc := *c
	cc.Jar, _ = cookiejar.New(nil)
	return &cc
}
