package voice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/pion/webrtc/v4"
)

const (
	// tickInterval paces the speaking indicators and the timeouts.
	tickInterval = 100 * time.Millisecond
	// speakingHangover keeps the indicator on through short pauses.
	speakingHangover = 400 * time.Millisecond
	// speakingStart is how many loud packets in one tick turn it on.
	speakingStart = 2
	// spareSlots are receive slots added beyond those needed, so that the
	// next talkers need no renegotiation.
	spareSlots = 2
	// Joins per session and offers per call: sustained per second, burst.
	joinRate, joinBurst   = 0.5, 5
	offerRate, offerBurst = 0.5, 5
	// maxRemoteCandidates bounds the ICE candidates a client may add per
	// offer it makes.
	maxRemoteCandidates = 64
	maxRoomID           = 128
)

// room is one voice channel with people in it.
type room struct {
	id        string
	parts     []*participant // in join order
	oneTalker bool
	floor     *participant
	floorAt   time.Time
}

// participant is one session's call: its PeerConnection, what it sends
// (its microphone, forwarded to the others) and its receive slots.
type participant struct {
	s      *Service
	id     string
	client hub.Client
	room   *room
	joined time.Time
	pc     *webrtc.PeerConnection
	kick   chan struct{} // negotiation needed
	done   chan struct{} // closed when removed

	sig     sync.Mutex // serializes signaling on pc; guards the fields below
	offers  *bucket
	cands   int          // remote candidates since the client's last offer
	offerAt atomic.Int64 // unix nanoseconds when our unanswered offer went out; 0: none

	candMu    sync.Mutex // server candidates wait while a description is being sent
	candHold  bool
	candQueue []webrtc.ICECandidateInit

	// Guarded by Service.mu.
	muted, deafened bool
	speaking        bool
	connected       bool // media flows now
	everConnected   bool
	gone            bool
	lastLoud        time.Time // tick that last saw a loud packet
	slots           []*slot
	waiting         []*participant // talkers waiting for a slot

	// The forwarding path reads these without locks.
	open atomic.Bool                        // its audio is forwarded
	deaf atomic.Bool                        // nothing is forwarded to it
	outs atomic.Pointer[[]*downTrack]       // where its audio goes
	loud atomic.Uint32                      // loud packets since the last tick
	mic  atomic.Pointer[webrtc.TrackRemote] // the track forwarded: the newest Opus audio one
}

// slot is one receive slot of a listener: a sendonly m-line of the
// server's, carrying one talker's audio at a time.
type slot struct {
	tr    *webrtc.RTPTransceiver
	dt    *downTrack
	mid   string
	ready bool         // negotiated: the listener has answered
	src   *participant // whose audio it carries; nil: free
	used  time.Time    // when src was assigned
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// join admits a client into a room and answers its offer.
func (s *Service) join(ctx context.Context, c hub.Client, m JoinMessage) error {
	p, err := s.admit(c, m)
	if err == nil {
		p.sig.Lock()
		err = p.acceptOffer(ctx, m.SDP)
		p.sig.Unlock()
		if err != nil {
			s.remove(p, "", "")
		}
	}
	if err != nil {
		s.counts.refused.Add(1)
		s.cfg.Publish(hub.Event{Type: TypeSignal, Sessions: []string{c.SessionID},
			Data: Signal{Room: m.Room, Type: SignalBye, Reason: Code(err), Message: err.Error()}})
		level := slog.LevelInfo
		if errors.Is(err, ErrTooFast) {
			level = slog.LevelDebug // a flood: do not log every one
		}
		s.log.Log(ctx, level, "voice join refused", "room", m.Room, "user", c.Name, "err", err)
		return err
	}
	s.counts.joins.Add(1)
	s.log.Info("joined voice", "room", m.Room, "user", c.Name, "participant", p.id)
	return nil
}

// admit checks a join, ends the session's earlier call, sets up the
// PeerConnection and adds the participant to its room.
func (s *Service) admit(c hub.Client, m JoinMessage) (*participant, error) {
	switch {
	case m.Room == "" || len(m.Room) > maxRoomID:
		return nil, fmt.Errorf("%w: voice.join needs a room", ErrBadMessage)
	case m.SDP == "":
		return nil, fmt.Errorf("%w: voice.join needs an SDP offer", ErrBadMessage)
	}
	now := time.Now()
	s.mu.Lock()
	b := s.joins[c.SessionID]
	if b == nil {
		if len(s.joins) >= 4096 {
			for k, b := range s.joins {
				if b.full(now) {
					delete(s.joins, k)
				}
			}
		}
		b = newBucket(joinRate, joinBurst)
		s.joins[c.SessionID] = b
	}
	ok := b.allow(now)
	old := s.sessions[c.SessionID]
	s.mu.Unlock()
	if !ok {
		return nil, ErrTooFast
	}
	if !s.cfg.CanJoin(c.UserID, m.Room) {
		return nil, ErrForbidden
	}
	if err := checkOffer(m.SDP, s.cfg.MaxParticipants); err != nil {
		return nil, err
	}
	if old != nil {
		s.remove(old, "", "")
	}
	var servers []webrtc.ICEServer
	if s.cfg.ICEServers != nil {
		servers = s.cfg.ICEServers(c.UserID)
	}
	oneTalker := s.cfg.OneTalker != nil && s.cfg.OneTalker(m.Room)

	p := &participant{s: s, id: newID(), client: c, joined: now, kick: make(chan struct{}, 1), done: make(chan struct{}),
		offers: newBucket(offerRate, offerBurst), muted: m.Muted, deafened: m.Deafened}
	p.deaf.Store(m.Deafened)
	p.outs.Store(&[]*downTrack{})
	if err := s.newPeer(p, servers); err != nil {
		return nil, err
	}
	s.mu.Lock()
	var err error
	r := s.rooms[m.Room]
	other := s.sessions[c.SessionID] // a concurrent join of the same session
	switch {
	case s.closed:
		err = ErrClosed
	case other != nil:
		err = ErrTooFast
	case r != nil && len(r.parts) >= s.cfg.MaxParticipants:
		err = fmt.Errorf("%w (%d people)", ErrRoomFull, s.cfg.MaxParticipants)
	}
	if err != nil {
		p.gone = true // never in a room: its connection's handlers do nothing
		s.mu.Unlock()
		_ = p.pc.Close()
		return nil, err
	}
	if r == nil {
		r = &room{id: m.Room, oneTalker: oneTalker}
		s.rooms[m.Room] = r
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	p.room = r
	r.parts = append(r.parts, p)
	s.sessions[c.SessionID] = p
	s.wg.Add(1)
	s.mu.Unlock()
	go func() { defer s.wg.Done(); p.negotiator() }()
	return p, nil
}

// update applies f to the participant's room under the lock, then
// reassigns slots, publishes the room and starts the negotiations needed.
func (s *Service) update(p *participant, f func(*room) error) error {
	s.mu.Lock()
	if p.gone {
		s.mu.Unlock()
		return ErrNotJoined
	}
	r := p.room
	if f != nil {
		if err := f(r); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	remap, reneg := s.reconcileLocked(r)
	s.mu.Unlock()
	s.publishRoom(r.id, remap)
	for _, l := range reneg {
		l.needNegotiation()
	}
	return nil
}

// reconcileLocked decides who talks (is forwarded), gives every talker a
// receive slot at every other participant (a free one, else the one
// whose source has been silent longest, else it waits for a new one), and
// rebuilds each participant's forwarding list. It returns the listeners
// whose slot mapping changed and those that need more slots.
func (s *Service) reconcileLocked(r *room) (remap, reneg []*participant) {
	now := time.Now()
	for _, p := range r.parts {
		p.open.Store(!p.gone && !p.muted && !p.deafened && (!r.oneTalker || r.floor == p))
	}
	for _, l := range r.parts {
		changed := false
		for _, sl := range l.slots {
			if sl.src != nil && (sl.src.gone || !sl.ready) {
				sl.src = nil
				sl.dt.setSource(nil)
				changed = true
			}
		}
		l.waiting = l.waiting[:0]
		for _, p := range r.parts {
			if p == l || !p.open.Load() || l.slotOf(p) != nil {
				continue
			}
			sl := l.freeSlot()
			if sl == nil {
				l.waiting = append(l.waiting, p)
				continue
			}
			sl.src, sl.used = p, now
			sl.dt.setSource(p)
			changed = true
		}
		if changed {
			remap = append(remap, l)
		}
		if len(l.waiting) > 0 {
			reneg = append(reneg, l)
		}
	}
	for _, p := range r.parts {
		outs := []*downTrack{}
		for _, l := range r.parts {
			if l == p {
				continue
			}
			for _, sl := range l.slots {
				if sl.src == p && sl.ready {
					outs = append(outs, sl.dt)
				}
			}
		}
		p.outs.Store(&outs)
	}
	return remap, reneg
}

func (l *participant) slotOf(p *participant) *slot {
	for _, sl := range l.slots {
		if sl.src == p {
			return sl
		}
	}
	return nil
}

// freeSlot returns a ready slot with no source, else the ready slot whose
// source is not talking and was assigned longest ago, else nil.
func (l *participant) freeSlot() *slot {
	var lru *slot
	for _, sl := range l.slots {
		if !sl.ready {
			continue
		}
		if sl.src == nil {
			return sl
		}
		if !sl.src.open.Load() && (lru == nil || sl.used.Before(lru.used)) {
			lru = sl
		}
	}
	return lru
}

// tracksLocked is the listener's slot mapping.
func (l *participant) tracksLocked() []Track {
	out := []Track{}
	for _, sl := range l.slots {
		if sl.ready && sl.src != nil {
			out = append(out, Track{Mid: sl.mid, Participant: sl.src.id, UserID: sl.src.client.UserID})
		}
	}
	return out
}

func (r *room) stateLocked() RoomState {
	st := RoomState{Room: r.id, OneTalker: r.oneTalker, Participants: make([]ParticipantState, 0, len(r.parts))}
	if r.floor != nil {
		st.Floor = r.floor.id
	}
	for _, p := range r.parts {
		st.Participants = append(st.Participants, ParticipantState{ID: p.id, UserID: p.client.UserID, Name: p.client.Name,
			Muted: p.muted, Deafened: p.deafened, Speaking: p.speaking, Connected: p.connected, Joined: p.joined})
	}
	return st
}

// publishRoom publishes the room's current state to its channel and the
// current slot mappings to the listeners in remap. Snapshots are taken and
// published under pubMu, so that the newest state is always published
// last.
func (s *Service) publishRoom(roomID string, remap []*participant) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	st := RoomState{Room: roomID, Participants: []ParticipantState{}}
	if r := s.rooms[roomID]; r != nil {
		st = r.stateLocked()
	}
	type mapping struct {
		p      *participant
		tracks []Track
	}
	var maps []mapping
	for _, l := range remap {
		if !l.gone {
			maps = append(maps, mapping{l, l.tracksLocked()})
		}
	}
	s.mu.Unlock()
	s.cfg.Publish(hub.Event{Type: TypeState, Channel: roomID, Data: st})
	for _, m := range maps {
		m.p.signal(Signal{Type: SignalTracks, Tracks: m.tracks})
	}
}

// remove ends a participant's call: out of its room, its connection
// closed, the room republished. With a reason, the client is told (a
// voice.signal "bye"). It is safe to call more than once.
func (s *Service) remove(p *participant, reason, message string) {
	s.mu.Lock()
	if p.gone {
		s.mu.Unlock()
		return
	}
	p.gone = true
	r := p.room
	var remap, reneg []*participant
	if r != nil {
		r.parts = slices.DeleteFunc(r.parts, func(x *participant) bool { return x == p })
		if r.floor == p {
			r.floor = nil
		}
		if len(r.parts) == 0 && s.rooms[r.id] == r {
			delete(s.rooms, r.id)
		}
		remap, reneg = s.reconcileLocked(r)
	}
	if s.sessions[p.client.SessionID] == p {
		delete(s.sessions, p.client.SessionID)
	}
	p.open.Store(false)
	p.outs.Store(&[]*downTrack{})
	for _, sl := range p.slots {
		sl.src = nil
		sl.dt.setSource(nil)
	}
	s.mu.Unlock()

	close(p.done)
	if reason != "" {
		p.signal(Signal{Type: SignalBye, Reason: reason, Message: message})
	}
	if err := p.pc.Close(); err != nil {
		s.log.Debug("close voice connection", "participant", p.id, "err", err)
	}
	if r != nil {
		s.publishRoom(r.id, remap)
		s.log.Info("left voice", "room", r.id, "user", p.client.Name, "participant", p.id, "reason", reason)
	}
	for _, l := range reneg {
		l.needNegotiation()
	}
}

// signal sends the participant's session a voice.signal.
func (p *participant) signal(sig Signal) {
	if p.room != nil {
		sig.Room = p.room.id
	}
	sig.Participant = p.id
	p.s.cfg.Publish(hub.Event{Type: TypeSignal, Sessions: []string{p.client.SessionID}, Data: sig})
}

// tick paces speaking indicators and timeouts while any room is open.
func (s *Service) tick() {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		s.mu.Lock()
		idle := len(s.rooms) == 0
		s.mu.Unlock()
		if idle {
			select {
			case <-s.done:
				return
			case <-s.wake:
				t.Reset(tickInterval)
			}
			continue
		}
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.step(now)
		}
	}
}

// step updates who speaks, releases stale floors and removes participants
// whose connection or negotiation timed out.
func (s *Service) step(now time.Time) {
	type expiry struct {
		p              *participant
		reason, detail string
	}
	type change struct {
		id           string
		remap, reneg []*participant
	}
	var expired []expiry
	var changed []change
	s.mu.Lock()
	for _, r := range s.rooms {
		dirty := false
		for _, p := range r.parts {
			n := p.loud.Swap(0)
			if n > 0 {
				p.lastLoud = now
			}
			speaking := p.open.Load() && (n >= speakingStart || p.speaking && now.Sub(p.lastLoud) < speakingHangover)
			if speaking != p.speaking {
				p.speaking, dirty = speaking, true
			}
			if !p.everConnected && now.Sub(p.joined) > s.cfg.ConnectTimeout {
				expired = append(expired, expiry{p, "connect_timeout", "The voice connection did not come up."})
			}
			if at := p.offerAt.Load(); at != 0 && now.Sub(time.Unix(0, at)) > s.cfg.NegotiationTimeout {
				expired = append(expired, expiry{p, "negotiation_timeout", "The client did not answer the server's offer."})
			}
		}
		var c change
		if f := r.floor; f != nil {
			last := r.floorAt
			if f.lastLoud.After(last) {
				last = f.lastLoud
			}
			if now.Sub(r.floorAt) > s.cfg.FloorMax || now.Sub(last) > s.cfg.FloorIdle {
				r.floor = nil
				c.remap, c.reneg = s.reconcileLocked(r)
				dirty = true
			}
		}
		if dirty {
			c.id = r.id
			changed = append(changed, c)
		}
	}
	s.mu.Unlock()
	for _, e := range expired {
		s.remove(e.p, e.reason, e.detail)
	}
	for _, c := range changed {
		s.publishRoom(c.id, c.remap)
		for _, l := range c.reneg {
			l.needNegotiation()
		}
	}
}

// Rooms returns the state of every room with people in it, by room ID.
// The caller filters by who may see them.
func (s *Service) Rooms() []RoomState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RoomState, 0, len(s.rooms))
	for _, r := range s.rooms {
		out = append(out, r.stateLocked())
	}
	slices.SortFunc(out, func(a, b RoomState) int {
		switch {
		case a.Room < b.Room:
			return -1
		case a.Room > b.Room:
			return 1
		}
		return 0
	})
	return out
}

// Recheck asks CanJoin again for everyone in roomID (every room when
// roomID is empty) and removes who may no longer be there (voice.signal
// "bye", reason "forbidden"). Call it after memberships change.
func (s *Service) Recheck(roomID string) {
	s.mu.Lock()
	var all []*participant
	for _, r := range s.rooms {
		if roomID == "" || r.id == roomID {
			all = append(all, r.parts...)
		}
	}
	s.mu.Unlock()
	for _, p := range all {
		if !s.cfg.CanJoin(p.client.UserID, p.room.id) {
			s.remove(p, Code(ErrForbidden), "You no longer have access to this voice channel.")
		}
	}
}
