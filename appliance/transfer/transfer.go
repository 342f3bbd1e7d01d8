package transfer

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store"
)

// Defaults and lifetimes from PROTOCOL.md.
const (
	DefaultCodeTTL = 10 * time.Minute // a guest pairing code
	MaxIdle        = time.Hour        // a transfer nobody touches is forgotten
	ResumeWait     = 10 * time.Minute // how long a transfer waits for a party to come back
	TicketTTL      = time.Hour        // a guest ticket's longest life
	SweepInterval  = 15 * time.Second
	// MaxOpenPerSession bounds the live transfers one session has offered.
	MaxOpenPerSession = 32
	// GuestPrefix starts a guest's user ID: "guest:<transfer id>".
	GuestPrefix = "guest:"
	// GuestName is the name a guest is shown by.
	GuestName = "guest"
)

// Config configures a Service.
type Config struct {
	// Publish delivers an event to the sessions it lists; required.
	Publish func(hub.Event)
	// Online returns who is on each open realtime connection; required.
	Online func() []hub.Client
	// Device names a member's session as its owner sees it in the
	// devices list ("Firefox on Linux"); nil names none.
	Device func(userID, sessionID string) string
	// Disconnect closes a user's realtime connections; the service calls
	// it with a guest's user ID when the guest's transfer ends. nil does
	// nothing.
	Disconnect func(userID string)
	// Store keeps each member's transfer history; nil keeps none.
	Store *store.Store
	// CodeTTL is how long a guest pairing code lives; zero means
	// DefaultCodeTTL.
	CodeTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil: discard
}

func (c *Config) validate() error {
	if c.Publish == nil || c.Online == nil {
		return errors.New("transfer: Publish and Online are required")
	}
	if c.CodeTTL < 0 || c.CodeTTL > 24*time.Hour {
		return fmt.Errorf("transfer: code TTL %v is out of range (up to 24h)", c.CodeTTL)
	}
	return nil
}

// Party is a side of a transfer, as the server attests it.
type Party struct {
	UserID    string `json:"user_id"`
	Name      string `json:"name"`
	SessionID string `json:"session_id"`
	Device    string `json:"device"`
}

// Offer is what a receiver is shown of a transfer (transfer.incoming, and
// a guest's pairing answer).
type Offer struct {
	ID        string `json:"id"`
	From      Party  `json:"from"`
	Files     []File `json:"files"`
	Total     int64  `json:"total"`
	RelayOnly bool   `json:"relay_only"`
}

// Stats are the service's counters.
type Stats struct {
	Live         int    // transfers in memory
	Offers       uint64 // offers made since start
	CodesIssued  uint64 // guest pairing codes made
	PairFailures uint64 // pairing attempts refused (wrong, used or expired code, throttled)
	Signals      uint64 // signaling messages forwarded
	Dropped      uint64 // non-relay candidates dropped from relay-only transfers
}

// Service holds the live transfers. It is safe for concurrent use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	guard *guard
	fails *throttle

	offers, codesIssued, pairFailures, signals, dropped atomic.Uint64

	// Nothing is called out (hooks, the store) while mu is held.
	mu        sync.Mutex
	transfers map[string]*transfer
	codes     map[string]string  // pairing code → transfer ID
	tickets   map[string]*ticket // hash of a guest ticket → ticket
	closed    bool
}

type transfer struct {
	id        string
	sender    Party
	guest     bool
	files     []File
	total     int64
	relayOnly bool
	peerName  string // the intended receiver's name, for history
	created   time.Time
	last      time.Time            // last activity
	notified  map[string]Party     // receiver sessions offered it, by session ID
	declined  map[string]bool      // notified sessions that declined
	receiver  *Party               // the session that accepted
	code      string               // unused pairing code
	codeUntil time.Time            // when the code expires
	ticket    string               // hash of the guest's ticket
	away      map[string]time.Time // party session → offline since
	reported  map[string]bool      // party sessions that sent a result
}

// New builds a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	s := &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, guard: newGuard(), fails: newThrottle(),
		transfers: map[string]*transfer{}, codes: map[string]string{}, tickets: map[string]*ticket{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	live := len(s.transfers)
	s.mu.Unlock()
	return Stats{Live: live, Offers: s.offers.Load(), CodesIssued: s.codesIssued.Load(),
		PairFailures: s.pairFailures.Load(), Signals: s.signals.Load(), Dropped: s.dropped.Load()}
}

// Run sweeps expired transfers until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Sweep()
		}
	}
}

// Close forgets every transfer (without telling anyone: the realtime
// connections are closing too). It is safe to call more than once.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	clear(s.transfers)
	clear(s.codes)
	clear(s.tickets)
}

// out collects what a call does once the lock is released: events to
// publish, history to write, guests to disconnect.
type out struct {
	events     []hub.Event
	history    []historyWrite
	disconnect []string
}

func (o *out) send(typ string, data any, sessions ...string) {
	if len(sessions) == 0 {
		return
	}
	o.events = append(o.events, hub.Event{Type: typ, Sessions: sessions, Data: data})
}

// flush does o. It returns the error of a late result's update (the
// caller's only history write that can fail for the caller's fault).
func (s *Service) flush(o *out) error {
	var updateErr error
	for _, ev := range o.events {
		s.cfg.Publish(ev)
	}
	for _, h := range o.history {
		err := s.record(h)
		switch {
		case err != nil && h.update:
			updateErr = err
		case err != nil:
			s.log.Warn("record transfer history", "transfer", h.rec.ID, "err", err)
		}
	}
	if s.cfg.Disconnect != nil {
		for _, u := range o.disconnect {
			s.cfg.Disconnect(u)
		}
	}
	return updateErr
}

// Handle runs a transfer.* message from a client of the realtime hub
// (the hub's Handle hook forwards every type starting with "transfer.").
// Errors are for that client only; Code names them.
func (s *Service) Handle(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error {
	now := s.now()
	if err := s.guard.allow(c.SessionID, now); err != nil {
		return err
	}
	m, err := Decode(typ, data)
	if err != nil {
		return err
	}
	if err := s.guard.fresh(c.SessionID, m.TS, m.Nonce, now); err != nil {
		return withRef(err, m.Ref)
	}
	if c.Guest && (typ == TypeOffer || GuestPrefix+m.ID != c.UserID) {
		return withRef(fmt.Errorf("%w: a guest takes part only in the transfer it paired for", ErrNotParty), m.Ref)
	}
	var o out
	err = s.run(c, m, now, &o)
	if ferr := s.flush(&o); err == nil {
		err = ferr
	}
	return withRef(err, m.Ref)
}

func (s *Service) run(c hub.Client, m Message, now time.Time, o *out) error {
	if m.Type == TypeOffer {
		// Who is online is asked before taking the lock (hooks are never
		// called under it).
		return s.offer(c, m, s.cfg.Online(), now, o)
	}
	var online []hub.Client
	if m.Type == TypeSignal || m.Type == TypeResume {
		online = s.cfg.Online()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	t := s.transfers[m.ID]
	if t == nil {
		if m.Type == TypeResult && !c.Guest {
			o.history = append(o.history, historyWrite{user: c.UserID, update: true, rec: Record{ID: m.ID, Result: m.Result, Bytes: m.Bytes, Done: m.FileCount}})
			return nil
		}
		return fmt.Errorf("%w: %s", ErrNotFound, m.ID)
	}
	switch m.Type {
	case TypeAccept:
		return s.accept(c, t, now, o)
	case TypeDecline:
		return s.decline(c, t, now, o)
	case TypeCancel:
		return s.cancel(c, t, m.Reason, now, o)
	case TypeSignal:
		return s.signal(c, t, m, online, now, o)
	case TypeResume:
		return s.resume(c, t, online, now, o)
	case TypeResult:
		return s.result(c, t, m, now, o)
	}
	return fmt.Errorf("%w: unknown type %s", ErrBadMessage, m.Type)
}

// party is c as the server attests it. Call without s.mu (it may ask the
// Device hook).
func (s *Service) party(c hub.Client) Party {
	p := Party{UserID: c.UserID, Name: c.Name, SessionID: c.SessionID}
	if !c.Guest && s.cfg.Device != nil {
		p.Device = s.cfg.Device(c.UserID, c.SessionID)
	}
	return p
}

func newID() string { return strings.ToLower(rand.Text()[:20]) }

func (s *Service) offer(c hub.Client, m Message, online []hub.Client, now time.Time, o *out) error {
	if c.Guest {
		return fmt.Errorf("%w: guests cannot offer", ErrNotParty)
	}
	targets := map[string]hub.Client{}
	for _, oc := range online {
		if oc.Guest || oc.SessionID == c.SessionID {
			continue
		}
		if (m.ToUser != "" && oc.UserID == m.ToUser) || (m.ToSession != "" && oc.SessionID == m.ToSession) {
			targets[oc.SessionID] = oc
		}
	}
	if !m.Guest && len(targets) == 0 {
		return ErrOffline
	}
	sender := s.party(c)
	notified := make(map[string]Party, len(targets))
	peerName := GuestName
	for sid, tc := range targets {
		notified[sid] = s.party(tc)
		peerName = tc.Name
	}
	t := &transfer{id: newID(), sender: sender, guest: m.Guest, files: m.Files, peerName: peerName,
		relayOnly: (m.RelayOnly != nil && *m.RelayOnly) || (m.Guest && m.RelayOnly == nil),
		created:   now, last: now, notified: notified, declined: map[string]bool{}, away: map[string]time.Time{}, reported: map[string]bool{}}
	for _, f := range m.Files {
		t.total += f.Size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	open := 0
	for _, x := range s.transfers {
		if x.sender.SessionID == c.SessionID {
			open++
		}
	}
	if open >= MaxOpenPerSession {
		return fmt.Errorf("%w: this device has %d transfers open; finish or cancel some", ErrTooFast, open)
	}
	created := map[string]any{"id": t.id, "expires": now.Add(MaxIdle).UTC()}
	if m.Ref != "" {
		created["ref"] = m.Ref
	}
	if t.guest {
		code, err := newCode()
		if err != nil {
			return err
		}
		for s.codes[code] != "" { // 50 bits: practically never
			if code, err = newCode(); err != nil {
				return err
			}
		}
		t.code, t.codeUntil = code, now.Add(s.cfg.CodeTTL)
		s.codes[code] = t.id
		created["code"], created["expires"] = code, t.codeUntil.UTC()
		s.codesIssued.Add(1)
	}
	s.transfers[t.id] = t
	s.offers.Add(1)
	o.send(TypeCreated, created, c.SessionID)
	o.send(TypeIncoming, t.offer(), slices.Sorted(maps.Keys(notified))...)
	s.log.Debug("transfer offered", "transfer", t.id, "files", len(t.files), "bytes", t.total, "guest", t.guest, "relay_only", t.relayOnly, "devices", len(notified))
	return nil
}

func (t *transfer) offer() Offer {
	return Offer{ID: t.id, From: t.sender, Files: t.files, Total: t.total, RelayOnly: t.relayOnly}
}

func (s *Service) accept(c hub.Client, t *transfer, now time.Time, o *out) error {
	if t.receiver != nil {
		if t.receiver.SessionID == c.SessionID {
			return nil // accepted already (a resent accept)
		}
		return ErrTaken
	}
	p, ok := t.notified[c.SessionID]
	if !ok || t.declined[c.SessionID] {
		return ErrNotParty
	}
	t.receiver = &p
	t.last = now
	o.send(TypeAccepted, map[string]any{"id": t.id, "peer": p}, t.sender.SessionID)
	var others []string
	for sid := range t.notified {
		if sid != c.SessionID {
			others = append(others, sid)
		}
	}
	slices.Sort(others)
	o.send(TypeTaken, map[string]any{"id": t.id}, others...)
	return nil
}

func (s *Service) decline(c hub.Client, t *transfer, now time.Time, o *out) error {
	if t.receiver != nil {
		if t.receiver.SessionID == c.SessionID {
			return fmt.Errorf("%w: this device accepted it; cancel it instead", ErrTaken)
		}
		return ErrTaken
	}
	p, ok := t.notified[c.SessionID]
	if !ok {
		return ErrNotParty
	}
	t.declined[c.SessionID] = true
	t.last = now
	if len(t.declined) < len(t.notified) {
		return nil
	}
	o.send(TypeDeclined, map[string]any{"id": t.id, "peer": p}, t.sender.SessionID)
	o.history = append(o.history, t.records(now, ResultDeclined, &p)...)
	s.forget(t, o)
	return nil
}

// isParty reports whether session is the sender or the receiver.
func (t *transfer) isParty(session string) bool {
	return session == t.sender.SessionID || (t.receiver != nil && session == t.receiver.SessionID)
}

// other is the party across from session (nil before acceptance, for the
// sender).
func (t *transfer) other(session string) *Party {
	if session == t.sender.SessionID {
		return t.receiver
	}
	return &t.sender
}

func (s *Service) cancel(c hub.Client, t *transfer, reason string, now time.Time, o *out) error {
	if !t.isParty(c.SessionID) {
		return ErrNotParty
	}
	by := t.sender
	if c.SessionID != t.sender.SessionID {
		by = *t.receiver
	}
	data := map[string]any{"id": t.id, "reason": reason, "by": by}
	if other := t.other(c.SessionID); other != nil {
		o.send(TypeCancelled, data, other.SessionID)
	} else {
		o.send(TypeCancelled, data, t.pending()...)
	}
	o.history = append(o.history, t.records(now, ResultCancelled, nil)...)
	s.forget(t, o)
	return nil
}

// pending lists the notified sessions that have not declined.
func (t *transfer) pending() []string {
	var out []string
	for sid := range t.notified {
		if !t.declined[sid] {
			out = append(out, sid)
		}
	}
	slices.Sort(out)
	return out
}

func isOnline(online []hub.Client, session string) bool {
	for _, c := range online {
		if c.SessionID == session {
			return true
		}
	}
	return false
}

func (s *Service) signal(c hub.Client, t *transfer, m Message, online []hub.Client, now time.Time, o *out) error {
	if !t.isParty(c.SessionID) {
		return ErrNotParty
	}
	other := t.other(c.SessionID)
	if other == nil {
		return fmt.Errorf("%w: the transfer is not accepted yet", ErrNotParty)
	}
	t.last = now
	if !isOnline(online, other.SessionID) {
		return fmt.Errorf("%w: the other device went away; it can resume when it is back", ErrOffline)
	}
	from := t.sender
	if c.SessionID != t.sender.SessionID {
		from = *t.receiver
	}
	data := map[string]any{"id": t.id, "from": from}
	switch {
	case m.SDP != nil:
		sdp := *m.SDP
		if t.relayOnly {
			sdp.SDP = relayOnlySDP(sdp.SDP)
		}
		data["sdp"] = sdp
	case m.Candidate != nil:
		if t.relayOnly && m.Candidate.Candidate != "" && !isRelayCandidate(m.Candidate.Candidate) {
			s.dropped.Add(1)
			return nil // dropped, as the protocol says; the sender is not told
		}
		data["candidate"] = m.Candidate
	}
	s.signals.Add(1)
	o.send(TypeSignal, data, other.SessionID)
	return nil
}

func (s *Service) resume(c hub.Client, t *transfer, online []hub.Client, now time.Time, o *out) error {
	if !t.isParty(c.SessionID) {
		return ErrNotParty
	}
	t.last = now
	delete(t.away, c.SessionID)
	other := t.other(c.SessionID)
	if other == nil {
		return fmt.Errorf("%w: the transfer is not accepted yet", ErrNotParty)
	}
	if isOnline(online, other.SessionID) {
		from := t.sender
		if c.SessionID != t.sender.SessionID {
			from = *t.receiver
		}
		o.send(TypeResume, map[string]any{"id": t.id, "from": from}, other.SessionID)
	}
	return nil
}

func (s *Service) result(c hub.Client, t *transfer, m Message, now time.Time, o *out) error {
	if !t.isParty(c.SessionID) {
		return ErrNotParty
	}
	t.last = now
	t.reported[c.SessionID] = true
	if !c.Guest {
		dir, peer := DirectionSent, t.receiver
		if c.SessionID != t.sender.SessionID {
			dir, peer = DirectionReceived, &t.sender
		}
		rec := t.record(dir, peer, now, m.Result)
		rec.Bytes, rec.Done = m.Bytes, m.FileCount
		o.history = append(o.history, historyWrite{user: c.UserID, rec: rec, overwrite: true})
	}
	if t.receiver != nil && t.reported[t.sender.SessionID] && t.reported[t.receiver.SessionID] {
		s.forget(t, o) // both sides are finished: nothing left to resume
	}
	return nil
}

// forget drops t and everything pointing to it. Call with s.mu held.
func (s *Service) forget(t *transfer, o *out) {
	delete(s.transfers, t.id)
	if t.code != "" {
		delete(s.codes, t.code)
	}
	if t.ticket != "" {
		delete(s.tickets, t.ticket)
		o.disconnect = append(o.disconnect, GuestPrefix+t.id)
	}
}

// ForgetUser ends the transfers a user takes part in (the account was
// disabled): the other parties get transfer.gone with reason "disabled".
func (s *Service) ForgetUser(userID string) {
	var o out
	now := s.now()
	s.mu.Lock()
	for _, t := range s.transfers {
		involved := t.sender.UserID == userID || (t.receiver != nil && t.receiver.UserID == userID)
		if t.receiver == nil {
			for _, p := range t.notified {
				involved = involved || p.UserID == userID
			}
		}
		if involved {
			s.gone(t, "disabled", now, &o)
		}
	}
	s.mu.Unlock()
	s.flush(&o)
}

// gone forgets t and tells everyone concerned. Call with s.mu held.
func (s *Service) gone(t *transfer, reason string, now time.Time, o *out) {
	var to []string // parties that finished (reported a result) need no news
	if !t.reported[t.sender.SessionID] {
		to = append(to, t.sender.SessionID)
	}
	if t.receiver != nil {
		if !t.reported[t.receiver.SessionID] {
			to = append(to, t.receiver.SessionID)
		}
	} else {
		to = append(to, t.pending()...)
	}
	o.send(TypeGone, map[string]any{"id": t.id, "reason": reason}, to...)
	o.history = append(o.history, t.records(now, ResultExpired, nil)...)
	s.forget(t, o)
	s.log.Debug("transfer forgotten", "transfer", t.id, "reason", reason)
}

// Sweep forgets transfers that expired: idle for MaxIdle (an accepted
// transfer whose parties are both connected is never idle), a guest code
// that ran out unused, or a party away for ResumeWait. The service runs
// it every SweepInterval; tests call it after moving their clock.
func (s *Service) Sweep() {
	online := map[string]bool{}
	for _, c := range s.cfg.Online() {
		online[c.SessionID] = true
	}
	now := s.now()
	var o out
	s.mu.Lock()
	for _, t := range s.transfers {
		parties := []string{t.sender.SessionID}
		if t.receiver != nil {
			parties = append(parties, t.receiver.SessionID)
		}
		awayTooLong, allHere := false, t.receiver != nil
		for _, sid := range parties {
			if online[sid] {
				delete(t.away, sid)
				continue
			}
			allHere = false
			since, ok := t.away[sid]
			if !ok {
				t.away[sid] = now
			} else if now.Sub(since) > ResumeWait {
				awayTooLong = true
			}
		}
		if allHere && now.After(t.last) {
			// Both sides connected to an accepted transfer: its bytes may
			// be flowing without a word to the appliance.
			t.last = now
		}
		switch {
		case now.Sub(t.last) > MaxIdle:
			s.gone(t, "expired", now, &o)
		case t.code != "" && now.After(t.codeUntil):
			s.gone(t, "expired", now, &o)
		case awayTooLong:
			s.gone(t, "timeout", now, &o)
		}
	}
	for h, tk := range s.tickets {
		if now.After(tk.until) {
			delete(s.tickets, h)
			o.disconnect = append(o.disconnect, tk.party.UserID)
		}
	}
	s.mu.Unlock()
	s.fails.prune(now)
	s.flush(&o)
}

// Devices lists the household's online devices (one per session) that
// self may send to: every member session with an open realtime
// connection but self's own, guests never. Sorted by name, then device.
func (s *Service) Devices(self hub.Client) []Party {
	seen := map[string]bool{}
	out := []Party{}
	for _, c := range s.cfg.Online() {
		if c.Guest || c.SessionID == self.SessionID || seen[c.SessionID] {
			continue
		}
		seen[c.SessionID] = true
		out = append(out, s.party(c))
	}
	slices.SortFunc(out, func(a, b Party) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Device, b.Device), strings.Compare(a.SessionID, b.SessionID))
	})
	return out
}
