package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/pion/webrtc/v4"
)

// Realtime message types. Clients send every type but voice.state; the
// server sends voice.signal (to one session) and voice.state (to a room's
// channel audience, or to one session after voice.sync).
const (
	TypeJoin   = "voice.join"
	TypeLeave  = "voice.leave"
	TypeSignal = "voice.signal"
	TypeMute   = "voice.mute"
	TypeDeafen = "voice.deafen"
	TypeFloor  = "voice.floor"
	TypeMode   = "voice.mode"
	TypeSync   = "voice.sync"
	TypeState  = "voice.state"
)

// Signal kinds (Signal.Type and SignalMessage.Type).
const (
	SignalOffer     = "offer"
	SignalAnswer    = "answer"
	SignalCandidate = "candidate"
	SignalTracks    = "tracks"
	SignalBye       = "bye"
)

// JoinMessage is the data of voice.join: join Room with an SDP offer that
// has one Opus audio m-line (the microphone, sendonly or sendrecv; recvonly
// to listen only). A session is in at most one room: joining again (the
// same room after a network blip, or another) ends its earlier call
// silently.
type JoinMessage struct {
	Room     string `json:"room"`
	SDP      string `json:"sdp"`
	Muted    bool   `json:"muted,omitempty"`
	Deafened bool   `json:"deafened,omitempty"`
}

// SignalMessage is the data of voice.signal from a client: the answer to a
// server offer, an offer of its own (ICE restart; only in a stable state,
// else ignored: the client is the polite peer), or a trickled ICE
// candidate. Room and Participant, when set, must name the current call
// (messages for an older call are ignored).
type SignalMessage struct {
	Room        string                   `json:"room,omitempty"`
	Participant string                   `json:"participant,omitempty"`
	Type        string                   `json:"type"`
	SDP         string                   `json:"sdp,omitempty"`
	Candidate   *webrtc.ICECandidateInit `json:"candidate,omitempty"`
}

// Signal is the data of voice.signal from the server, sent to the one
// session in the call:
//
//   - "answer" (SDP): the answer to the client's offer; Participant is the
//     client's own participant ID from now on.
//   - "offer" (SDP): receive slots were added; answer with voice.signal
//     type "answer".
//   - "candidate" (Candidate): a trickled server candidate.
//   - "tracks" (Tracks): which receive slot (m-line, by mid) carries whose
//     audio, complete each time; slots not listed are silent.
//   - "bye" (Reason, Message): the server ended the call or refused the
//     join; Reason is a code (see Code, and connection_failed,
//     connect_timeout, negotiation_timeout, removed, shutting_down).
type Signal struct {
	Room        string                   `json:"room"`
	Participant string                   `json:"participant,omitempty"`
	Type        string                   `json:"type"`
	SDP         string                   `json:"sdp,omitempty"`
	Candidate   *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Tracks      []Track                  `json:"tracks,omitzero"`
	Reason      string                   `json:"reason,omitempty"`
	Message     string                   `json:"message,omitempty"`
}

// Track says that the receive slot with media ID Mid carries the audio of
// Participant (of UserID).
type Track struct {
	Mid         string `json:"mid"`
	Participant string `json:"participant"`
	UserID      string `json:"user_id"`
}

// RoomState is the data of voice.state: everything the UI shows about a
// room, complete each time (the newest wins).
type RoomState struct {
	Room         string             `json:"room"`
	OneTalker    bool               `json:"one_talker"`
	Floor        string             `json:"floor"` // participant ID holding the floor, or ""
	Participants []ParticipantState `json:"participants"`
}

// ParticipantState is one person in a room.
type ParticipantState struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Name      string    `json:"name"`
	Muted     bool      `json:"muted"`
	Deafened  bool      `json:"deafened"`
	Speaking  bool      `json:"speaking"`
	Connected bool      `json:"connected"` // media flows
	Joined    time.Time `json:"joined"`
}

// Handle runs a voice.* message from a client of the realtime hub (the
// hub's Handle hook forwards every type starting with "voice."). Errors
// are for that client only (the hub sends them back as an error event;
// Code gives each a stable code); nothing a client sends affects another's
// call. The messages, with their data:
//
//	voice.join   JoinMessage {"room", "sdp", "muted"?, "deafened"?}
//	             answered by voice.signal "answer" (or "bye" if refused)
//	voice.signal SignalMessage {"type": "answer"|"offer"|"candidate", "sdp"?, "candidate"?}
//	voice.mute   {"muted": bool}       push-to-talk released (true) or held (false)
//	voice.deafen {"deafened": bool}
//	voice.floor  {"action": "request"|"release"}   one-talker rooms (no-op otherwise)
//	voice.mode   {"one_talker": bool}  any participant may switch the room
//	voice.leave  {}
//	voice.sync   {}                    voice.state of each room the user may join
//
// Every message but join and sync may carry "room" (and signal
// "participant"); when set, it must name the session's current call.
func (s *Service) Handle(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	switch typ {
	case TypeJoin:
		var m JoinMessage
		if err := decode(data, &m); err != nil {
			return err
		}
		return s.join(ctx, c, m)
	case TypeLeave:
		var m struct {
			Room string `json:"room"`
		}
		if err := decode(data, &m); err != nil {
			return err
		}
		p, err := s.participant(c, m.Room)
		if err != nil {
			return err
		}
		s.remove(p, "", "")
		return nil
	case TypeSignal:
		var m SignalMessage
		if err := decode(data, &m); err != nil {
			return err
		}
		p, err := s.participant(c, m.Room)
		if err != nil {
			return err
		}
		if m.Participant != "" && m.Participant != p.id {
			return nil // for an earlier call of this session
		}
		return p.handleSignal(ctx, m)
	case TypeMute:
		var m struct {
			Room  string `json:"room"`
			Muted *bool  `json:"muted"`
		}
		if err := decode(data, &m); err != nil {
			return err
		}
		if m.Muted == nil {
			return fmt.Errorf("%w: voice.mute needs {\"muted\": true|false}", ErrBadMessage)
		}
		p, err := s.participant(c, m.Room)
		if err != nil {
			return err
		}
		return s.update(p, func(*room) error { p.muted = *m.Muted; return nil })
	case TypeDeafen:
		var m struct {
			Room     string `json:"room"`
			Deafened *bool  `json:"deafened"`
		}
		if err := decode(data, &m); err != nil {
			return err
		}
		if m.Deafened == nil {
			return fmt.Errorf("%w: voice.deafen needs {\"deafened\": true|false}", ErrBadMessage)
		}
		p, err := s.participant(c, m.Room)
		if err != nil {
			return err
		}
		return s.update(p, func(*room) error { p.deafened = *m.Deafened; p.deaf.Store(*m.Deafened); return nil })
	case TypeFloor:
		var m struct {
			Room   string `json:"room"`
			Action string `json:"action"`
		}
		if err := decode(data, &m); err != nil {
			return err
		}
		p, err := s.participant(c, m.Room)
		if err != nil {
			return err
		}
		switch m.Action {
		case "request":
			return s.update(p, func(r *room) error {
				if !r.oneTalker || r.floor == p {
					return nil
				}
				if r.floor != nil {
					return fmt.Errorf("%w (%s)", ErrFloorTaken, r.floor.client.Name)
				}
				r.floor, r.floorAt = p, time.Now()
				return nil
			})
		case "release":
			return s.update(p, func(r *room) error {
				if r.floor == p {
					r.floor = nil
				}
				return nil
			})
		}
		return fmt.Errorf("%w: floor action is request or release", ErrBadMessage)
	case TypeMode:
		var m struct {
			Room      string `json:"room"`
			OneTalker *bool  `json:"one_talker"`
		}
		if err := decode(data, &m); err != nil {
			return err
		}
		if m.OneTalker == nil {
			return fmt.Errorf("%w: voice.mode needs {\"one_talker\": true|false}", ErrBadMessage)
		}
		p, err := s.participant(c, m.Room)
		if err != nil {
			return err
		}
		return s.update(p, func(r *room) error {
			if r.oneTalker != *m.OneTalker {
				r.oneTalker, r.floor = *m.OneTalker, nil
			}
			return nil
		})
	case TypeSync:
		s.sync(c)
		return nil
	}
	return fmt.Errorf("%w %q", ErrUnknownType, typ)
}

// decode parses a message's data; absent data decodes as {}.
func decode(data json.RawMessage, v any) error {
	if len(bytes.TrimSpace(data)) == 0 || bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return nil
}

// participant finds the session's call, in room when room is set.
func (s *Service) participant(c hub.Client, room string) (*participant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.sessions[c.SessionID]
	if p == nil || p.client.UserID != c.UserID || (room != "" && p.room.id != room) {
		return nil, ErrNotJoined
	}
	return p, nil
}

// Disconnected ends the call of a session whose realtime connection ended
// (the hub's Disconnected hook): a participant who vanishes without leaving
// is removed at once.
func (s *Service) Disconnected(c hub.Client) {
	s.mu.Lock()
	p := s.sessions[c.SessionID]
	s.mu.Unlock()
	if p != nil && p.client.UserID == c.UserID {
		s.remove(p, "", "")
	}
}

// sync sends the client the state of every room it may join that has
// people in it, as voice.state events to its session only.
func (s *Service) sync(c hub.Client) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.rooms))
	for id := range s.rooms {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var allowed []string
	for _, id := range ids {
		if s.cfg.CanJoin(c.UserID, id) {
			allowed = append(allowed, id)
		}
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	for _, id := range allowed {
		s.mu.Lock()
		r := s.rooms[id]
		var st RoomState
		if r != nil {
			st = r.stateLocked()
		}
		s.mu.Unlock()
		if r != nil {
			s.cfg.Publish(hub.Event{Type: TypeState, Sessions: []string{c.SessionID}, Data: st})
		}
	}
}
