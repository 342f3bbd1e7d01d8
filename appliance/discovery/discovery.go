package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults and the names of what is published.
const (
	// DefaultName is the instance and host name when Config.Name is empty.
	DefaultName = "hearth"
	// DefaultVersion is the TXT v value when Config.Version is empty.
	DefaultVersion = "dev"
	// DefaultPollInterval is how often the interfaces and their addresses
	// are checked for changes.
	DefaultPollInterval = 5 * time.Second
	// ServiceType is Hearth's own DNS-SD service type.
	ServiceType = "_hearth._tcp"
	// HTTPSServiceType is the generic service type Hearth also publishes.
	HTTPSServiceType = "_https._tcp"
	// Domain is the mDNS domain.
	Domain = "local"
	// MaxNameLen is the longest Config.Name accepted: a DNS label is 63
	// bytes, and room is left for a "-NNN" suffix after conflicts.
	MaxNameLen = 58
)

// Sentinel errors. Use errors.Is to test for them.
var (
	// ErrNoInterface means no interface that is up and multicast-capable
	// (other than loopback and point-to-point links) was found.
	ErrNoInterface = errors.New("no multicast-capable network interface is up")
	// ErrNoAddress means the interfaces have no address to announce yet.
	ErrNoAddress = errors.New("no address to announce on the multicast-capable interfaces")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("announcer is closed")
	// ErrNotFound is returned by Resolve when nothing answered in time.
	ErrNotFound = errors.New("no answer on the local network")
)

// Config configures an Announcer. The zero value of every field but Port
// means its documented default.
type Config struct {
	// Name is the instance and host name (<Name>.local); empty means
	// DefaultName. It must be a DNS label: letters, digits and inner
	// hyphens, at most MaxNameLen long. It is used in lower case.
	Name string
	// Version is published as TXT v; empty means DefaultVersion.
	Version string
	// Port is the HTTPS (or, with TLS off, HTTP) port the services point
	// at, published in the SRV records and as TXT https. Required.
	Port int
	// Interfaces restricts mDNS to these interfaces (an empty, non-nil
	// list means none: ErrNoInterface). nil means every interface that is
	// up, multicast-capable and has an address, except loopback and
	// point-to-point links, re-read at every poll.
	Interfaces []net.Interface
	// Logger receives the announcer's log; nil discards it.
	Logger *slog.Logger
	// Addrs returns the addresses to announce for the host name on every
	// interface. nil means each interface's own addresses: its IPv4
	// addresses and its global IPv6 addresses, or its link-local ones when
	// it has no global one. Tests use it to simulate address changes.
	Addrs func() ([]netip.Addr, error)
	// PollInterval is how often interfaces and addresses are checked for
	// changes; zero means DefaultPollInterval.
	PollInterval time.Duration

	// listen opens the mDNS transport on the interfaces (nil: real
	// multicast sockets on port 5353). Tests hand in an in-memory network.
	listen func(ifaces []net.Interface) (transport, error)
	// publish starts publishing the services for a held name and returns
	// the function that stops them with goodbyes (nil: zeroconf).
	publish func(p publication) (stop func(), err error)
}

// nameRE matches a DNS label of letters, digits and inner hyphens.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

func (c *Config) validate() error {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if len(c.Name) > MaxNameLen || !nameRE.MatchString(c.Name) {
		return fmt.Errorf("mdns name %q: want letters, digits and inner hyphens, at most %d long", c.Name, MaxNameLen)
	}
	c.Name = strings.ToLower(c.Name)
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("mdns: port %d out of range 1-65535", c.Port)
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("mdns: negative poll interval %v", c.PollInterval)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	for _, ifi := range c.Interfaces {
		if ifi.Index <= 0 {
			return fmt.Errorf("mdns: interface %q has no index", ifi.Name)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.listen == nil {
		c.listen = listenMDNS
	}
	if c.publish == nil {
		c.publish = publishZeroconf
	}
	return nil
}

// State is where an Announcer is in its life.
type State string

// States, in the order they usually come.
const (
	StateIdle      State = "idle"      // New returned; Run not called
	StateWaiting   State = "waiting"   // no interface or address yet; retrying
	StateProbing   State = "probing"   // checking that the name is free
	StateAnnounced State = "announced" // the name is held and answered for
	StateStopped   State = "stopped"   // Run returned; goodbyes sent
)

// Status is a snapshot of an Announcer for the admin UI and `hearth doctor`.
type Status struct {
	State State `json:"state"`
	// Name is the name held or being probed, e.g. "hearth-2".
	Name string `json:"name"`
	// Host is Name in the mDNS domain, e.g. "hearth-2.local".
	Host string `json:"host"`
	// Services are the service instance names published.
	Services []string `json:"services,omitempty"`
	// Interfaces are the names of the interfaces mDNS runs on.
	Interfaces []string `json:"interfaces,omitempty"`
	// Addrs are the addresses announced for Host.
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// Conflicts counts the names given up because another host held them.
	Conflicts int `json:"conflicts"`
	// LastError is the last problem met, e.g. no multicast-capable
	// interface; empty once the name is announced.
	LastError string `json:"last_error,omitempty"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
}

// Announcer publishes Hearth on the LAN. Its methods are safe for
// concurrent use.
type Announcer struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	status  Status
	held    string // the name held, "" when none
	running bool
	lastLog string // last error logged, so a retry loop logs it once

	closeOnce sync.Once
	closed    chan struct{}
	done      chan struct{} // closed when a running Run returns
}

// New checks cfg and returns an Announcer; nothing is sent until Run.
func New(cfg Config) (*Announcer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Announcer{cfg: cfg, log: cfg.Logger, closed: make(chan struct{})}
	a.status = Status{State: StateIdle, Name: cfg.Name, Host: cfg.Name + "." + Domain, Since: time.Now()}
	return a, nil
}

// Name returns the name held on the LAN, e.g. "hearth" or, after a
// conflict, "hearth-2"; it is empty while no name is held (before probing
// succeeds, without a usable interface, after Run returns).
func (a *Announcer) Name() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held
}

// Status returns a snapshot of the announcer's state.
func (a *Announcer) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.Services = slices.Clone(s.Services)
	s.Interfaces = slices.Clone(s.Interfaces)
	s.Addrs = slices.Clone(s.Addrs)
	return s
}

// Run announces until ctx ends or Close is called, then sends goodbyes and
// returns nil. Problems on the way (no multicast-capable interface, no
// address yet, a socket that cannot be opened) are logged, shown in Status
// and retried every poll interval: they never end Run, so the rest of
// Hearth keeps serving. Run returns an error only when it is called twice
// at once or after Close.
func (a *Announcer) Run(ctx context.Context) error {
	a.mu.Lock()
	switch {
	case a.running:
		a.mu.Unlock()
		return errors.New("mdns: announcer is already running")
	case isClosed(a.closed):
		a.mu.Unlock()
		return ErrClosed
	}
	a.running = true
	a.done = make(chan struct{})
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running = false
		a.held = ""
		a.status.Services, a.status.Addrs = nil, nil
		a.setStateLocked(StateStopped)
		close(a.done)
		a.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-a.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	attempt := 1 // the name tried is candidate(cfg.Name, attempt)
	for {
		var err error
		attempt, err = a.session(ctx, attempt)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errInterfacesChanged) {
			a.log.Info("network interfaces changed; announcing again")
			continue
		}
		a.fail(err)
		t := time.NewTimer(a.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Close stops a running Run, waiting for its goodbyes. It is safe to call
// more than once and on an Announcer that never ran.
func (a *Announcer) Close() error {
	a.closeOnce.Do(func() { close(a.closed) })
	a.mu.Lock()
	running, done := a.running, a.done
	a.mu.Unlock()
	if running {
		<-done
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// fail records a problem in Status and logs it once until it changes.
func (a *Announcer) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held = ""
	a.status.LastError = err.Error()
	a.status.Addrs = nil
	a.status.Services = nil
	a.setStateLocked(StateWaiting)
	if a.lastLog != err.Error() {
		a.lastLog = err.Error()
		a.log.Warn("mdns not announcing; retrying", "err", err, "every", a.cfg.PollInterval)
	}
}

func (a *Announcer) setStateLocked(s State) {
	if a.status.State != s {
		a.status.State = s
		a.status.Since = time.Now()
	}
}

// update changes the status under the lock.
func (a *Announcer) update(fn func(s *Status)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.status)
}

func (a *Announcer) setHeld(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held = name
	a.lastLog = ""
}
