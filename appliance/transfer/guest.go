package transfer

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
)

// Pairing codes: CodeLength characters of Crockford's base 32 (5 bits
// each, 50 in all), shown as XXXXX-XXXXX.
const (
	CodeLength   = 10
	crockford    = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ticketPrefix = "hg_"
)

// newCode returns a random pairing code.
func newCode() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:7]); err != nil {
		return "", fmt.Errorf("make pairing code: %w", err)
	}
	n := binary.BigEndian.Uint64(b[:])
	out := make([]byte, CodeLength)
	for i := range out {
		out[i] = crockford[n>>(64-5)]
		n <<= 5
	}
	return string(out), nil
}

// NormalizeCode reads a code as a person may type it: any case, with
// dashes or spaces, O for 0 and I or L for 1. It returns "" for anything
// that is not a code.
func NormalizeCode(s string) string {
	if len(s) > 3*CodeLength {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(crockford, r) {
			return ""
		}
		b.WriteRune(r)
	}
	if b.Len() != CodeLength {
		return ""
	}
	return b.String()
}

// ticket is a paired guest's pass, stored by the hash of its secret.
type ticket struct {
	transfer string
	party    Party
	until    time.Time
}

func hashTicket(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Ticket is what Pair hands a guest: the secret (shown once) and the
// transfer it may join.
type Ticket struct {
	Token    string     `json:"ticket"`
	Expires  time.Time  `json:"expires"`
	Client   hub.Client `json:"-"`
	Transfer Offer      `json:"transfer"`
}

// Pair trades a pairing code for a guest ticket for the code's transfer.
// addr is the client's IP address (failures are throttled per address);
// device describes the guest's browser or program for the sender. A code
// works once; wrong, used and expired codes are all ErrBadCode.
func (s *Service) Pair(code, addr, device string) (Ticket, error) {
	now := s.now()
	key := addrKey(addr)
	if wait := s.fails.wait(key, now); wait > 0 {
		s.pairFailures.Add(1)
		return Ticket{}, &ThrottledError{RetryAfter: wait}
	}
	fail := func() (Ticket, error) {
		s.fails.fail(key, now)
		s.pairFailures.Add(1)
		return Ticket{}, ErrBadCode
	}
	norm := NormalizeCode(code)
	if norm == "" {
		return fail()
	}
	secret := ticketPrefix + rand.Text() + rand.Text()
	sid := "g_" + strings.ToLower(rand.Text()[:16])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Ticket{}, ErrClosed
	}
	id := s.codes[norm]
	t := s.transfers[id]
	if t == nil || t.code != norm || t.receiver != nil {
		delete(s.codes, norm)
		return fail()
	}
	if now.After(t.codeUntil) {
		delete(s.codes, norm) // the sweep tells the sender
		return fail()
	}
	delete(s.codes, norm) // used once
	t.code = ""
	p := Party{UserID: GuestPrefix + t.id, Name: GuestName, SessionID: sid, Device: clip(device, 100)}
	tk := &ticket{transfer: t.id, party: p, until: now.Add(TicketTTL)}
	h := hashTicket(secret)
	s.tickets[h] = tk
	t.ticket = h
	t.notified = map[string]Party{sid: p}
	t.last = now
	s.fails.reset(key)
	s.log.Info("guest paired", "transfer", t.id)
	return Ticket{Token: secret, Expires: tk.until.UTC(), Client: guestClient(p), Transfer: t.offer()}, nil
}

func guestClient(p Party) hub.Client {
	return hub.Client{UserID: p.UserID, SessionID: p.SessionID, Name: p.Name, Guest: true}
}

// Guest resolves a guest ticket to the hub client the guest connects as
// and when the ticket ends. It fails with ErrBadTicket when the ticket is
// unknown, expired or its transfer is over.
func (s *Service) Guest(token string) (hub.Client, time.Time, error) {
	if !strings.HasPrefix(token, ticketPrefix) || len(token) > 200 {
		return hub.Client{}, time.Time{}, ErrBadTicket
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tk := s.tickets[hashTicket(token)]
	if tk == nil || now.After(tk.until) || s.transfers[tk.transfer] == nil {
		return hub.Client{}, time.Time{}, ErrBadTicket
	}
	return guestClient(tk.party), tk.until, nil
}

// IsGuestTicket reports whether a bearer token has the form of a guest
// ticket (rather than a session or access token).
func IsGuestTicket(token string) bool { return strings.HasPrefix(token, ticketPrefix) }

// throttle slows down guessing: after freeFailures wrong codes from an
// address, each further one doubles its wait, up to maxWait. Entries are
// forgotten after an hour; the table is bounded.
type throttle struct {
	mu      sync.Mutex
	entries map[string]*failures
}

type failures struct {
	n     int
	last  time.Time
	until time.Time
}

const (
	freeFailures = 5
	firstWait    = time.Second
	maxWait      = 5 * time.Minute
	forgetAfter  = time.Hour
	maxEntries   = 10000
)

func newThrottle() *throttle { return &throttle{entries: map[string]*failures{}} }

func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		return 0
	}
	// A clock that went back does not stretch a wait beyond maxWait.
	return min(max(e.until.Sub(now), 0), maxWait)
}

func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || now.Sub(e.last) > forgetAfter {
		if len(t.entries) >= maxEntries {
			t.pruneLocked(now, true)
		}
		e = &failures{}
		t.entries[key] = e
	}
	e.n++
	e.last = now
	if over := e.n - freeFailures; over > 0 {
		d := firstWait
		for i := 1; i < over && d < maxWait; i++ {
			d *= 2
		}
		e.until = now.Add(min(d, maxWait))
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

func (t *throttle) prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now, false)
}

func (t *throttle) pruneLocked(now time.Time, full bool) {
	for k, e := range t.entries {
		if now.Sub(e.last) > forgetAfter || now.Before(e.last.Add(-forgetAfter)) {
			delete(t.entries, k)
		}
	}
	if full && len(t.entries) >= maxEntries {
		clear(t.entries) // a flood of addresses: start over rather than grow
	}
}

// addrKey groups a client address: IPv6 clients by their /64.
func addrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
