package transfer

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Each realtime refusal wraps one; Code names it for the
// client's error event. Their text is fit to show to a person.
var (
	ErrBadMessage = errors.New("the transfer message is malformed")
	ErrStale      = errors.New("the transfer message is too old or from the future")
	ErrReplayed   = errors.New("the transfer message was already received")
	ErrTooFast    = errors.New("too many transfer messages")
	ErrNotFound   = errors.New("there is no such transfer (it ended or expired)")
	ErrNotParty   = errors.New("this device is not a party to that transfer")
	ErrOffline    = errors.New("no device of the recipient is online")
	ErrTaken      = errors.New("another device already accepted that transfer")
	ErrExpired    = errors.New("the transfer has expired")
	ErrTooLarge   = errors.New("the transfer message is too large")

	// ErrBadCode is returned by Pair for a code that is wrong, used or
	// expired (they are not told apart, to help no one guessing).
	ErrBadCode = errors.New("that pairing code is not valid; it may be mistyped, used or expired")
	// ErrBadTicket is returned by Guest for an unknown or ended ticket.
	ErrBadTicket = errors.New("the guest pass is not valid or has ended")
	// ErrClosed is returned once the service is closed.
	ErrClosed = errors.New("transfers are shutting down")
)

var codes = []struct {
	err  error
	code string
}{
	{ErrBadMessage, "bad_message"},
	{ErrStale, "stale"},
	{ErrReplayed, "replayed"},
	{ErrTooFast, "too_fast"},
	{ErrNotFound, "not_found"},
	{ErrNotParty, "not_party"},
	{ErrOffline, "offline"},
	{ErrTaken, "taken"},
	{ErrExpired, "expired"},
	{ErrTooLarge, "too_large"},
	{ErrClosed, "shutting_down"},
}

// Code names err for a client's error event (PROTOCOL.md section 2), or
// returns "" when err is not the transfer service's.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// ThrottledError is returned by Pair while an address must wait after too
// many wrong codes.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many wrong pairing codes; try again in %d seconds", int((e.RetryAfter+time.Second-1)/time.Second))
}

// refError carries the client's ref so the error event can echo it.
type refError struct {
	err error
	ref string
}

func (e *refError) Error() string { return e.err.Error() }
func (e *refError) Unwrap() error { return e.err }
func (e *refError) Ref() string   { return e.ref }

func withRef(err error, ref string) error {
	if err == nil || ref == "" {
		return err
	}
	return &refError{err: err, ref: ref}
}
