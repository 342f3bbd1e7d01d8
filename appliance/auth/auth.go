package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-home/hearth/appliance/store"
	"golang.org/x/crypto/argon2"
)

// Roles.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleGuest  = "guest"
)

// Defaults.
const (
	DefaultSessionIdle = 14 * 24 * time.Hour
	DefaultSessionMax  = 90 * 24 * time.Hour
	DefaultTokenMax    = 365 * 24 * time.Hour
	DefaultInviteTTL   = 7 * 24 * time.Hour
	// lastSeenEvery limits how often a session's last-seen time is written,
	// to spare SD cards.
	lastSeenEvery = 5 * time.Minute
)

// Config configures a Service.
type Config struct {
	Store       *store.Store
	SessionIdle time.Duration // zero: DefaultSessionIdle
	SessionMax  time.Duration // zero: DefaultSessionMax
	Hash        HashParams    // zero: DefaultHashParams
	// Now returns the current time; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil: discard
	// HashConcurrency bounds simultaneous password hashes (memory on a
	// small box); zero means 2.
	HashConcurrency int
	// UsersChanged is called after an account is created, disabled or
	// enabled; nil does nothing.
	UsersChanged func()
}

// Service manages accounts. It is safe for concurrent use.
type Service struct {
	st       *store.Store
	idle     time.Duration
	max      time.Duration
	hash     HashParams
	now      func() time.Time
	log      *slog.Logger
	hashSem  chan struct{}
	accounts *throttle
	addrs    *throttle
	dummy    string // a hash to check against for unknown names
	changed  func()

	seenMu sync.Mutex
	seen   map[string]time.Time // session hash → last written last-seen
}

// New builds a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: no store")
	}
	s := &Service{
		st:       cfg.Store,
		idle:     cfg.SessionIdle,
		max:      cfg.SessionMax,
		hash:     cfg.Hash.orDefault(),
		now:      cfg.Now,
		log:      cfg.Logger,
		accounts: newThrottle(5, time.Minute, 15*time.Minute),
		addrs:    newThrottle(20, time.Minute, 15*time.Minute),
		seen:     map[string]time.Time{},
		changed:  cfg.UsersChanged,
	}
	if s.changed == nil {
		s.changed = func() {}
	}
	if s.idle == 0 {
		s.idle = DefaultSessionIdle
	}
	if s.max == 0 {
		s.max = DefaultSessionMax
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	n := cfg.HashConcurrency
	if n <= 0 {
		n = 2
	}
	s.hashSem = make(chan struct{}, n)
	s.dummy = dummyHash(s.hash)
	return s, nil
}

// User is an account.
type User struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Role        string    `json:"role"`
	Disabled    bool      `json:"disabled"`
	Created     time.Time `json:"created"`
	PassHash    string    `json:"pass_hash,omitempty"`
}

// Public returns u without secrets, fit for an API response.
func (u User) Public() User {
	u.PassHash = ""
	return u
}

// NewUser describes an account to create.
type NewUser struct {
	Name        string
	DisplayName string
	Password    string
	Role        string
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// ValidateName checks a user name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return ErrInvalidName
	}
	return nil
}

func validateDisplay(d string) error {
	if d == "" || utf8.RuneCountInString(d) > 64 || !utf8.ValidString(d) {
		return ErrInvalidDisplay
	}
	for _, r := range d {
		if unicode.IsControl(r) {
			return ErrInvalidDisplay
		}
	}
	return nil
}

// ValidatePassword checks a new password.
func ValidatePassword(pw string) error {
	if utf8.RuneCountInString(pw) < 8 || len(pw) > 1024 {
		return ErrWeakPassword
	}
	return nil
}

func (nu *NewUser) normalise() error {
	nu.Name = strings.TrimSpace(nu.Name)
	nu.DisplayName = strings.TrimSpace(nu.DisplayName)
	if nu.DisplayName == "" {
		nu.DisplayName = nu.Name
	}
	if nu.Role == "" {
		nu.Role = RoleMember
	}
	if err := ValidateName(nu.Name); err != nil {
		return err
	}
	if err := validateDisplay(nu.DisplayName); err != nil {
		return err
	}
	switch nu.Role {
	case RoleAdmin, RoleMember, RoleGuest:
	default:
		return ErrInvalidRole
	}
	return ValidatePassword(nu.Password)
}

// dummyHash is a well-formed hash with the current costs that no password
// matches. Checking a password against it costs as much as a real check,
// without spending a real hash (19 MiB, tens of milliseconds) at start-up.
func dummyHash(p HashParams) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(make([]byte, saltLen)), enc.EncodeToString(make([]byte, keyLen)))
}

// hashPW hashes under the concurrency bound.
func (s *Service) hashPW(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return hashPassword(pw, s.hash)
}

func (s *Service) checkPW(ctx context.Context, pw, hash string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.release()
	return checkPassword(pw, hash)
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.hashSem }

// randomID returns n random bytes as lowercase base32 without padding.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// hashToken returns the stored form of a secret token.
func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// insertUser stores a new user inside tx.
func insertUser(tx *store.Tx, u User) error {
	if id, _ := tx.GetRaw(store.BucketNames, u.Name); id != nil {
		return ErrNameTaken
	}
	if err := tx.PutRaw(store.BucketNames, u.Name, []byte(u.ID)); err != nil {
		return err
	}
	return store.Put(tx, store.BucketUsers, u.ID, u)
}

func (s *Service) newUserRecord(ctx context.Context, nu NewUser) (User, error) {
	if err := nu.normalise(); err != nil {
		return User{}, err
	}
	h, err := s.hashPW(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	return User{ID: randomID(10), Name: nu.Name, DisplayName: nu.DisplayName, Role: nu.Role,
		Created: s.now().UTC(), PassHash: h}, nil
}

// CreateUser adds an account.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	u, err := s.newUserRecord(ctx, nu)
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", nu.Name, err)
	}
	if err := s.st.Update(func(tx *store.Tx) error { return insertUser(tx, u) }); err != nil {
		return User{}, fmt.Errorf("create user %q: %w", nu.Name, err)
	}
	s.changed()
	s.log.Info("user created", "user", u.Name, "role", u.Role)
	return u.Public(), nil
}

// Users lists every account, by name.
func (s *Service) Users() ([]User, error) {
	var out []User
	err := s.st.View(func(tx *store.Tx) error {
		return tx.EachRaw(store.BucketNames, "", func(_ string, id []byte) error {
			u, ok, err := store.Get[User](tx, store.BucketUsers, string(id))
			if ok {
				out = append(out, u.Public())
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// User returns the account with id.
func (s *Service) User(id string) (User, error) {
	var u User
	err := s.st.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		u, ok, err = store.Get[User](tx, store.BucketUsers, id)
		if err == nil && !ok {
			err = ErrUserNotFound
		}
		return err
	})
	return u.Public(), err
}

// UserByName returns the account called name.
func (s *Service) UserByName(name string) (User, error) {
	var u User
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		u, err = userByName(tx, name)
		return err
	})
	return u.Public(), err
}

func userByName(tx *store.Tx, name string) (User, error) {
	id, err := tx.GetRaw(store.BucketNames, name)
	if err != nil {
		return User{}, err
	}
	if id == nil {
		return User{}, ErrUserNotFound
	}
	u, ok, err := store.Get[User](tx, store.BucketUsers, string(id))
	if err == nil && !ok {
		err = ErrUserNotFound
	}
	return u, err
}

// updateUser applies change to the stored user id inside one transaction.
func (s *Service) updateUser(id string, change func(tx *store.Tx, u *User) error) (User, error) {
	var u User
	err := s.st.Update(func(tx *store.Tx) error {
		var ok bool
		var err error
		u, ok, err = store.Get[User](tx, store.BucketUsers, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrUserNotFound
		}
		if err := change(tx, &u); err != nil {
			return err
		}
		return store.Put(tx, store.BucketUsers, id, u)
	})
	return u.Public(), err
}

// SetPassword sets a user's password (an admin reset) and signs out all of
// that user's devices.
func (s *Service) SetPassword(ctx context.Context, id, pw string) error {
	if err := ValidatePassword(pw); err != nil {
		return err
	}
	h, err := s.hashPW(ctx, pw)
	if err != nil {
		return err
	}
	u, err := s.updateUser(id, func(tx *store.Tx, u *User) error {
		u.PassHash = h
		return revokeWhere(tx, func(ss Session) bool { return ss.UserID == id })
	})
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	s.accounts.reset("acct:" + u.Name)
	s.log.Info("password reset", "user", u.Name)
	return nil
}

// ChangePassword changes the caller's own password after checking the
// current one, and signs out every other device.
func (s *Service) ChangePassword(ctx context.Context, id, current, next, keepSessionID string) error {
	if err := ValidatePassword(next); err != nil {
		return err
	}
	var stored User
	err := s.st.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		stored, ok, err = store.Get[User](tx, store.BucketUsers, id)
		if err == nil && !ok {
			err = ErrUserNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if ok, err := s.checkPW(ctx, current, stored.PassHash); err != nil || !ok {
		if err != nil {
			return fmt.Errorf("change password: %w", err)
		}
		return ErrBadCredentials
	}
	h, err := s.hashPW(ctx, next)
	if err != nil {
		return err
	}
	_, err = s.updateUser(id, func(tx *store.Tx, u *User) error {
		u.PassHash = h
		return revokeWhere(tx, func(ss Session) bool { return ss.UserID == id && ss.ID != keepSessionID })
	})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	s.log.Info("password changed", "user", stored.Name)
	return nil
}

// SetDisplayName changes how a user's name is shown.
func (s *Service) SetDisplayName(id, display string) (User, error) {
	display = strings.TrimSpace(display)
	if err := validateDisplay(display); err != nil {
		return User{}, err
	}
	return s.updateUser(id, func(_ *store.Tx, u *User) error { u.DisplayName = display; return nil })
}

// SetDisabled disables or enables an account. Disabling signs out all of its
// devices. The last enabled admin cannot be disabled.
func (s *Service) SetDisabled(id string, disabled bool) (User, error) {
	u, err := s.updateUser(id, func(tx *store.Tx, u *User) error {
		if disabled && u.Role == RoleAdmin && !u.Disabled {
			admins := 0
			err := store.Each(tx, store.BucketUsers, "", func(_ string, o User) error {
				if o.Role == RoleAdmin && !o.Disabled {
					admins++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if admins <= 1 {
				return ErrLastAdmin
			}
		}
		u.Disabled = disabled
		if disabled {
			return revokeWhere(tx, func(ss Session) bool { return ss.UserID == id })
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("set disabled: %w", err)
	}
	s.changed()
	s.log.Info("user disabled changed", "user", u.Name, "disabled", disabled)
	return u, nil
}
