package auth

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Their text is fit to show to a person.
var (
	ErrBadCredentials  = errors.New("wrong name or password")
	ErrUserDisabled    = errors.New("this account is disabled; ask an admin")
	ErrUnauthenticated = errors.New("not signed in, or the session has ended")
	ErrBadSetupToken   = errors.New("the setup token is not right; copy it again from the log or `hearth admin setup-token`")
	ErrAlreadySetUp    = errors.New("hearth is already set up; sign in instead")
	ErrInvalidName     = errors.New("a name is 1 to 32 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit")
	ErrInvalidDisplay  = errors.New("a display name is 1 to 64 characters without control characters")
	ErrWeakPassword    = errors.New("a password needs at least 8 characters (and at most 1024 bytes)")
	ErrNameTaken       = errors.New("that name is already taken")
	ErrInvalidRole     = errors.New("a role is admin, member or guest")
	ErrInviteNotFound  = errors.New("this invite link is not valid")
	ErrInviteExpired   = errors.New("this invite link has expired; ask for a new one")
	ErrInviteUsedUp    = errors.New("this invite link has already been used")
	ErrInviteRevoked   = errors.New("this invite link was revoked")
	ErrUserNotFound    = errors.New("no such user")
	ErrSessionNotFound = errors.New("no such session")
	ErrLastAdmin       = errors.New("that would leave Hearth without an enabled admin")
	ErrInvalidInvite   = errors.New("an invite allows 1 to 100 uses and lasts from 1 minute to 30 days")
)

// ThrottledError is returned while sign-in attempts are paused after too
// many failures.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return "too many failed sign-ins; try again in " + humanDuration(e.RetryAfter)
}

// humanDuration says a wait the way a person would: "45 seconds",
// "1 minute", "15 minutes".
func humanDuration(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	if d < time.Minute {
		return plural(max(1, int((d+time.Second-1)/time.Second)), "second")
	}
	return plural(int((d+time.Minute-1)/time.Minute), "minute")
}
