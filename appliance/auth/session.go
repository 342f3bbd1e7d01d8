package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hearth-home/hearth/appliance/store"
)

// Session kinds.
const (
	KindSession = "session" // a browser or app sign-in
	KindToken   = "token"   // a personal access token for scripts and the CLI
)

// Token prefixes make a leaked secret recognisable.
const (
	sessionPrefix = "hs_"
	tokenPrefix   = "hp_"
)

// Session is one signed-in device or access token. Its secret is stored
// only as a hash.
type Session struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Kind     string    `json:"kind"`
	Device   string    `json:"device"`
	Address  string    `json:"address"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires"`
}

// Device describes where a sign-in comes from.
type Device struct {
	Name    string // e.g. "Firefox on Android", or a token's label
	Address string // client IP
}

// expired reports whether ss has ended at now under the idle limit.
func (ss Session) expired(now time.Time, idle time.Duration) bool {
	if !now.Before(ss.Expires) {
		return true
	}
	return ss.Kind == KindSession && now.Sub(ss.LastSeen) > idle
}

// IdleExpiry is when the session ends if it is not used again.
func (ss Session) IdleExpiry(idle time.Duration) time.Time {
	if ss.Kind != KindSession {
		return ss.Expires
	}
	if t := ss.LastSeen.Add(idle); t.Before(ss.Expires) {
		return t
	}
	return ss.Expires
}

func (s *Service) newSession(userID, kind string, d Device) (token string, ss Session) {
	now := s.now().UTC()
	life, prefix := s.max, sessionPrefix
	if kind == KindToken {
		life, prefix = DefaultTokenMax, tokenPrefix
	}
	token = prefix + randomID(32)
	ss = Session{ID: randomID(8), UserID: userID, Kind: kind, Device: clip(d.Name, 100), Address: d.Address,
		Created: now, LastSeen: now, Expires: now.Add(life)}
	return token, ss
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

func putSession(tx *store.Tx, token string, ss Session) error {
	return store.Put(tx, store.BucketSessions, hashToken(token), ss)
}

// CreateToken issues a personal access token for user id (for scripts and
// the CLI); the returned secret is shown once.
func (s *Service) CreateToken(id, label string) (string, Session, error) {
	token, ss := s.newSession(id, KindToken, Device{Name: label})
	err := s.st.Update(func(tx *store.Tx) error {
		u, ok, err := store.Get[User](tx, store.BucketUsers, id)
		if err != nil {
			return err
		}
		if !ok {
			return ErrUserNotFound
		}
		if u.Disabled {
			return ErrUserDisabled
		}
		return putSession(tx, token, ss)
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("create token: %w", err)
	}
	return token, ss, nil
}

// Login checks a name and password and opens a session for the device.
// Failures are throttled per account and per client address.
func (s *Service) Login(ctx context.Context, name, password string, d Device) (User, Session, string, error) {
	now := s.now()
	acctKey, ipKey := "acct:"+name, addrKey(d.Address)
	if w := max(s.accounts.wait(acctKey, now), s.addrs.wait(ipKey, now)); w > 0 {
		return User{}, Session{}, "", &ThrottledError{RetryAfter: w}
	}
	var u User
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		u, err = userByName(tx, name)
		return err
	})
	if errors.Is(err, ErrUserNotFound) {
		// Spend the same effort as a real check so timing does not reveal
		// which names exist.
		_, _ = s.checkPW(ctx, password, s.dummy)
		s.accounts.fail(acctKey, now)
		s.addrs.fail(ipKey, now)
		return User{}, Session{}, "", ErrBadCredentials
	}
	if err != nil {
		return User{}, Session{}, "", fmt.Errorf("sign in: %w", err)
	}
	ok, err := s.checkPW(ctx, password, u.PassHash)
	if err != nil {
		return User{}, Session{}, "", fmt.Errorf("sign in: %w", err)
	}
	if !ok {
		s.accounts.fail(acctKey, now)
		s.addrs.fail(ipKey, now)
		s.log.Info("sign-in failed", "user", name)
		return User{}, Session{}, "", ErrBadCredentials
	}
	if u.Disabled {
		return User{}, Session{}, "", ErrUserDisabled
	}
	s.accounts.reset(acctKey)
	token, ss := s.newSession(u.ID, KindSession, d)
	if err := s.st.Update(func(tx *store.Tx) error { return putSession(tx, token, ss) }); err != nil {
		return User{}, Session{}, "", fmt.Errorf("sign in: %w", err)
	}
	s.log.Info("signed in", "user", u.Name, "session", ss.ID)
	return u.Public(), ss, token, nil
}

// Authenticate resolves a session or access token to its user. It ends
// expired sessions and refuses disabled users. It records when and from
// where the session was last used, at most every few minutes.
func (s *Service) Authenticate(token, addr string) (User, Session, error) {
	if token == "" || len(token) > 200 {
		return User{}, Session{}, ErrUnauthenticated
	}
	key := hashToken(token)
	now := s.now().UTC()
	var u User
	var ss Session
	err := s.st.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		ss, ok, err = store.Get[Session](tx, store.BucketSessions, key)
		if err != nil {
			return err
		}
		if !ok {
			return ErrUnauthenticated
		}
		u, ok, err = store.Get[User](tx, store.BucketUsers, ss.UserID)
		if err == nil && !ok {
			err = ErrUnauthenticated
		}
		return err
	})
	if err != nil {
		return User{}, Session{}, err
	}
	if ss.expired(now, s.idle) {
		_ = s.st.Update(func(tx *store.Tx) error { return tx.Delete(store.BucketSessions, key) })
		return User{}, Session{}, ErrUnauthenticated
	}
	if u.Disabled {
		return User{}, Session{}, ErrUserDisabled
	}
	if s.shouldTouch(key, ss, now, addr) {
		err := s.st.Update(func(tx *store.Tx) error {
			cur, ok, err := store.Get[Session](tx, store.BucketSessions, key)
			if err != nil || !ok {
				return err
			}
			cur.LastSeen = now
			if addr != "" {
				cur.Address = addr
			}
			return store.Put(tx, store.BucketSessions, key, cur)
		})
		if err != nil {
			s.log.Warn("record session use", "session", ss.ID, "err", err)
		}
		ss.LastSeen = now
	}
	return u.Public(), ss, nil
}

func (s *Service) shouldTouch(key string, ss Session, now time.Time, addr string) bool {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	last := ss.LastSeen
	if t := s.seen[key]; t.After(last) {
		last = t
	}
	if now.Sub(last) < lastSeenEvery && (addr == "" || addr == ss.Address) {
		return false
	}
	s.seen[key] = now
	if len(s.seen) > 10000 {
		clear(s.seen)
	}
	return true
}

// Sessions lists a user's live sessions, newest first.
func (s *Service) Sessions(userID string) ([]Session, error) {
	now := s.now()
	var out []Session
	err := s.st.View(func(tx *store.Tx) error {
		return store.Each(tx, store.BucketSessions, "", func(_ string, ss Session) error {
			if ss.UserID == userID && !ss.expired(now, s.idle) {
				out = append(out, ss)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	sortSessions(out)
	return out, nil
}

// Revoke ends one of a user's sessions by its ID.
func (s *Service) Revoke(userID, sessionID string) error {
	found := false
	err := s.st.Update(func(tx *store.Tx) error {
		found = false
		return revokeWhere(tx, func(ss Session) bool {
			if ss.UserID == userID && ss.ID == sessionID {
				found = true
			}
			return ss.UserID == userID && ss.ID == sessionID
		})
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if !found {
		return ErrSessionNotFound
	}
	return nil
}

// Logout ends the session that token belongs to.
func (s *Service) Logout(token string) error {
	return s.st.Update(func(tx *store.Tx) error { return tx.Delete(store.BucketSessions, hashToken(token)) })
}

func revokeWhere(tx *store.Tx, match func(Session) bool) error {
	var keys []string
	err := store.Each(tx, store.BucketSessions, "", func(k string, ss Session) error {
		if match(ss) {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.Delete(store.BucketSessions, k); err != nil {
			return err
		}
	}
	return nil
}

// Sweep deletes ended sessions and long-dead invites. The daemon runs it
// periodically; it returns how many records it removed.
func (s *Service) Sweep() (int, error) {
	now := s.now()
	n := 0
	err := s.st.Update(func(tx *store.Tx) error {
		n = 0
		var dead []string
		err := store.Each(tx, store.BucketSessions, "", func(k string, ss Session) error {
			if ss.expired(now, s.idle) {
				dead = append(dead, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dead {
			if err := tx.Delete(store.BucketSessions, k); err != nil {
				return err
			}
		}
		n += len(dead)
		dead = dead[:0]
		err = store.Each(tx, store.BucketInvites, "", func(k string, inv Invite) error {
			if now.Sub(inv.Expires) > inviteKeep {
				dead = append(dead, k)
			}
			return nil
		})
		for _, k := range dead {
			if err := tx.Delete(store.BucketInvites, k); err != nil {
				return err
			}
		}
		n += len(dead)
		return err
	})
	return n, err
}
