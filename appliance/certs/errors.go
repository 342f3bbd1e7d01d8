package certs

import "errors"

// Sentinel errors. Use errors.Is to test for them; the errors returned wrap
// them with what was being done and what a person can do about it.
var (
	// ErrCAKeyMissing means the local CA's certificate is stored but its
	// private key is not. Hearth refuses to make a new CA on its own, since
	// every device that trusts the old one would stop trusting Hearth.
	ErrCAKeyMissing = errors.New("the local CA's private key is missing")
	// ErrCAKeyCorrupt means the stored CA private key cannot be read.
	ErrCAKeyCorrupt = errors.New("the local CA's private key is damaged")
	// ErrCAKeyMismatch means the stored CA private key does not belong to
	// the stored CA certificate.
	ErrCAKeyMismatch = errors.New("the local CA's private key does not match its certificate")
	// ErrClockWrong means the system clock reads a time that cannot be
	// right (before Config.ClockFloor, or before the CA was made).
	ErrClockWrong = errors.New("the system clock is wrong")
	// ErrNameNotPermitted means a name lies outside the domains the local CA
	// may certify (its name constraints); clients would reject such a
	// certificate.
	ErrNameNotPermitted = errors.New("name is outside the domains this Hearth's CA may certify")
	// ErrNotStarted is returned by handshakes before Start has loaded the
	// certificates.
	ErrNotStarted = errors.New("certificates are not loaded yet")
	// ErrCorruptRecord means a value read from the KV is not a record this
	// package wrote (it is truncated or from something else).
	ErrCorruptRecord = errors.New("stored certificate record is damaged")
)
