package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Client message types.
const (
	TypeOffer   = "transfer.offer"
	TypeAccept  = "transfer.accept"
	TypeDecline = "transfer.decline"
	TypeCancel  = "transfer.cancel"
	TypeSignal  = "transfer.signal"
	TypeResume  = "transfer.resume"
	TypeResult  = "transfer.result"
)

// Server event types.
const (
	TypeCreated   = "transfer.created"
	TypeIncoming  = "transfer.incoming"
	TypeAccepted  = "transfer.accepted"
	TypeDeclined  = "transfer.declined"
	TypeTaken     = "transfer.taken"
	TypeCancelled = "transfer.cancelled"
	TypeGone      = "transfer.gone"
	// TypeSignal and TypeResume are also sent by the server.
)

// Limits from PROTOCOL.md.
const (
	MaxMessageBytes = 64 << 10 // a transfer.* message's data, SDP included
	MaxFiles        = 10000    // files in one offer
	MinNonce        = 16
	MaxNonce        = 64
	maxRef          = 64
	maxID           = 64
	maxReason       = 200
	maxName         = 4096 // a file name (path) in an offer, bytes
	maxType         = 255  // a file's media type, bytes
)

// Results a party reports (transfer.result), and the ones the server
// records itself in history.
const (
	ResultDone      = "done"
	ResultFailed    = "failed"
	ResultCancelled = "cancelled"
	ResultDeclined  = "declined" // server: the receiver declined
	ResultExpired   = "expired"  // server: the transfer was forgotten
)

// File is one file of an offer, as the sender describes it.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Type string `json:"type"`
}

// SDP is a session description, as RTCSessionDescriptionInit.
type SDP struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
}

// Candidate is a trickled ICE candidate, as RTCIceCandidateInit.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Message is a decoded client message: the fields common to every type
// and those of its own type (the others are zero).
type Message struct {
	Type  string `json:"-"`
	TS    int64  `json:"ts"`
	Nonce string `json:"nonce"`
	Ref   string `json:"ref,omitempty"`
	ID    string `json:"id,omitempty"`

	// transfer.offer
	ToUser    string `json:"to_user,omitempty"`
	ToSession string `json:"to_session,omitempty"`
	Guest     bool   `json:"guest,omitempty"`
	Files     []File `json:"-"`
	RelayOnly *bool  `json:"relay_only,omitempty"`

	// transfer.cancel
	Reason string `json:"reason,omitempty"`

	// transfer.signal
	SDP       *SDP       `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`

	// transfer.result
	Result    string `json:"result,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	FileCount int    `json:"-"` // result's "files": how many files arrived
}

// wire is Message as it arrives: "files" is a list in an offer and a
// count in a result.
type wire struct {
	Message
	Files json.RawMessage `json:"files"`
}

// Decode parses and checks the data of a client message of type typ. It
// checks shape only (not freshness, rate or the caller's part), and
// returns an error wrapping ErrTooLarge or ErrBadMessage.
func Decode(typ string, data []byte) (Message, error) {
	if len(data) > MaxMessageBytes {
		return Message{}, fmt.Errorf("%w: %d bytes of data, at most %d", ErrTooLarge, len(data), MaxMessageBytes)
	}
	switch typ {
	case TypeOffer, TypeAccept, TypeDecline, TypeCancel, TypeSignal, TypeResume, TypeResult:
	default:
		return Message{}, fmt.Errorf("%w: unknown type %q", ErrBadMessage, clip(typ, 64))
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Message{}, fmt.Errorf("%w: data is not a %s object: %s", ErrBadMessage, typ, clip(err.Error(), 200))
	}
	if dec.More() {
		return Message{}, fmt.Errorf("%w: data after the JSON object", ErrBadMessage)
	}
	m := w.Message
	m.Type = typ
	bad := func(format string, args ...any) (Message, error) {
		return Message{}, fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
	}
	if m.TS <= 0 {
		return bad("ts (Unix milliseconds) is missing")
	}
	if n := len(m.Nonce); n < MinNonce || n > MaxNonce || !printable(m.Nonce) {
		return bad("nonce must be %d to %d printable ASCII characters", MinNonce, MaxNonce)
	}
	if len(m.Ref) > maxRef || !printable(m.Ref) {
		return bad("ref must be at most %d printable ASCII characters", maxRef)
	}
	if typ != TypeOffer {
		if m.ID == "" || len(m.ID) > maxID || !printable(m.ID) {
			return bad("id names no transfer")
		}
	}
	onlyFor := func(want string, set bool, field string) error {
		if set && typ != want {
			return fmt.Errorf("%w: %s is not a field of %s", ErrBadMessage, field, typ)
		}
		return nil
	}
	for _, e := range []error{
		onlyFor(TypeOffer, m.ToUser != "" || m.ToSession != "" || m.Guest || m.RelayOnly != nil, "to_user/to_session/guest/relay_only"),
		onlyFor(TypeCancel, m.Reason != "", "reason"),
		onlyFor(TypeSignal, m.SDP != nil || m.Candidate != nil, "sdp/candidate"),
		onlyFor(TypeResult, m.Result != "" || m.Bytes != 0, "result/bytes"),
	} {
		if e != nil {
			return Message{}, e
		}
	}
	switch typ {
	case TypeOffer:
		if m.ID != "" {
			return bad("an offer has no id; the server assigns it")
		}
		targets := 0
		for _, set := range []bool{m.ToUser != "", m.ToSession != "", m.Guest} {
			if set {
				targets++
			}
		}
		if targets != 1 {
			return bad("an offer names exactly one of to_user, to_session or guest: true")
		}
		if len(m.ToUser) > maxID || len(m.ToSession) > maxID || !printable(m.ToUser) || !printable(m.ToSession) {
			return bad("to_user or to_session is not an ID")
		}
		if err := json.Unmarshal(w.Files, &m.Files); err != nil || len(w.Files) == 0 {
			return bad("files must be a list of {name, size, type}")
		}
		if len(m.Files) == 0 || len(m.Files) > MaxFiles {
			return bad("an offer lists 1 to %d files", MaxFiles)
		}
		var total int64
		for i, f := range m.Files {
			if f.Name == "" || len(f.Name) > maxName || !utf8.ValidString(f.Name) {
				return bad("file %d has no usable name", i)
			}
			if f.Size < 0 || f.Size > 1<<50 {
				return bad("file %d has a size out of range", i)
			}
			if len(f.Type) > maxType || !printable(f.Type) {
				return bad("file %d has a bad type", i)
			}
			total += f.Size
		}
		if total > 1<<60 {
			return bad("the files' total size is out of range")
		}
	case TypeCancel:
		if len(m.Reason) > maxReason || !utf8.ValidString(m.Reason) || hasControl(m.Reason) {
			return bad("reason must be at most %d characters of text", maxReason)
		}
	case TypeSignal:
		if (m.SDP == nil) == (m.Candidate == nil) {
			return bad("a signal carries exactly one of sdp or candidate")
		}
		if m.SDP != nil {
			switch m.SDP.Type {
			case "offer", "answer", "pranswer", "rollback":
			default:
				return bad("sdp.type must be offer, answer, pranswer or rollback")
			}
			if !utf8.ValidString(m.SDP.SDP) {
				return bad("sdp.sdp is not text")
			}
		}
		if c := m.Candidate; c != nil {
			if len(c.Candidate) > 1024 || !printable(c.Candidate) {
				return bad("candidate.candidate is not an ICE candidate line")
			}
			if (c.SDPMid != nil && (len(*c.SDPMid) > maxID || !printable(*c.SDPMid))) ||
				(c.UsernameFragment != nil && (len(*c.UsernameFragment) > 256 || !printable(*c.UsernameFragment))) {
				return bad("candidate.sdpMid or usernameFragment is not usable")
			}
		}
	case TypeResult:
		switch m.Result {
		case ResultDone, ResultFailed, ResultCancelled:
		default:
			return bad("result must be done, failed or cancelled")
		}
		if m.Bytes < 0 {
			return bad("bytes must not be negative")
		}
		if len(w.Files) > 0 {
			if err := json.Unmarshal(w.Files, &m.FileCount); err != nil || m.FileCount < 0 || m.FileCount > MaxFiles {
				return bad("files must be the number of files that arrived")
			}
		}
	default:
		if len(w.Files) > 0 {
			return bad("files is not a field of %s", typ)
		}
	}
	return m, nil
}

// printable reports whether s is printable ASCII (space to tilde).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
