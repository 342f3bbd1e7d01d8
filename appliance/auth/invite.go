package auth

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hearth-home/hearth/appliance/store"
)

// inviteKeep is how long an expired invite stays listed.
const inviteKeep = 30 * 24 * time.Hour

// Invite lets new members join. Its secret is stored only as a hash.
type Invite struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	Uses      int       `json:"uses"`
	Used      int       `json:"used"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	Expires   time.Time `json:"expires"`
	Revoked   bool      `json:"revoked"`
	Status    string    `json:"status"`
}

// Invite statuses.
const (
	InviteActive  = "active"
	InviteExpired = "expired"
	InviteUsedUp  = "used_up"
	InviteRevoked = "revoked"
)

func (inv Invite) withStatus(now time.Time) Invite {
	switch {
	case inv.Revoked:
		inv.Status = InviteRevoked
	case inv.Used >= inv.Uses:
		inv.Status = InviteUsedUp
	case !now.Before(inv.Expires):
		inv.Status = InviteExpired
	default:
		inv.Status = InviteActive
	}
	return inv
}

func (inv Invite) usable(now time.Time) error {
	switch inv.withStatus(now).Status {
	case InviteRevoked:
		return ErrInviteRevoked
	case InviteUsedUp:
		return ErrInviteUsedUp
	case InviteExpired:
		return ErrInviteExpired
	}
	return nil
}

// InviteRequest describes an invite to make.
type InviteRequest struct {
	CreatedBy string        // user name of the admin
	Uses      int           // zero: 1
	TTL       time.Duration // zero: DefaultInviteTTL
	Role      string        // zero: member
}

// CreateInvite makes an invite and returns it with its secret token, which
// is shown only this once.
func (s *Service) CreateInvite(req InviteRequest) (Invite, string, error) {
	if req.Uses == 0 {
		req.Uses = 1
	}
	if req.TTL == 0 {
		req.TTL = DefaultInviteTTL
	}
	if req.Role == "" {
		req.Role = RoleMember
	}
	if req.Uses < 1 || req.Uses > 100 || req.TTL < time.Minute || req.TTL > 30*24*time.Hour {
		return Invite{}, "", ErrInvalidInvite
	}
	if req.Role != RoleMember && req.Role != RoleAdmin && req.Role != RoleGuest {
		return Invite{}, "", ErrInvalidRole
	}
	now := s.now().UTC()
	token := randomID(20)
	inv := Invite{ID: randomID(6), Role: req.Role, Uses: req.Uses, Created: now, CreatedBy: req.CreatedBy,
		Expires: now.Add(req.TTL)}
	if err := s.st.Update(func(tx *store.Tx) error {
		return store.Put(tx, store.BucketInvites, hashToken(token), inv)
	}); err != nil {
		return Invite{}, "", fmt.Errorf("create invite: %w", err)
	}
	s.log.Info("invite created", "invite", inv.ID, "by", req.CreatedBy, "uses", inv.Uses, "expires", inv.Expires)
	return inv.withStatus(now), token, nil
}

// Invites lists invites, newest first.
func (s *Service) Invites() ([]Invite, error) {
	now := s.now()
	var out []Invite
	err := s.st.View(func(tx *store.Tx) error {
		return store.Each(tx, store.BucketInvites, "", func(_ string, inv Invite) error {
			out = append(out, inv.withStatus(now))
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// CheckInvite returns the invite for token if it can still be used.
func (s *Service) CheckInvite(token string) (Invite, error) {
	var inv Invite
	err := s.st.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		inv, ok, err = store.Get[Invite](tx, store.BucketInvites, hashToken(token))
		if err == nil && !ok {
			err = ErrInviteNotFound
		}
		return err
	})
	if err != nil {
		return Invite{}, err
	}
	if err := inv.usable(s.now()); err != nil {
		return Invite{}, err
	}
	return inv.withStatus(s.now()), nil
}

// CheckInviteFrom is CheckInvite for a client at addr: unknown tokens
// count as failures of the address, paused like sign-in, so invite tokens
// cannot be guessed at speed.
func (s *Service) CheckInviteFrom(token, addr string) (Invite, error) {
	now, key := s.now(), addrKey(addr)
	if w := s.addrs.wait(key, now); w > 0 {
		return Invite{}, &ThrottledError{RetryAfter: w}
	}
	inv, err := s.CheckInvite(token)
	if errors.Is(err, ErrInviteNotFound) {
		s.addrs.fail(key, now)
	}
	return inv, err
}

// AcceptInvite creates an account with the invite's role, counts the use
// and signs the new user in, all in one transaction.
func (s *Service) AcceptInvite(ctx context.Context, token string, nu NewUser, d Device) (User, Session, string, error) {
	inv, err := s.CheckInviteFrom(token, d.Address)
	if err != nil {
		return User{}, Session{}, "", err
	}
	nu.Role = inv.Role
	u, err := s.newUserRecord(ctx, nu)
	if err != nil {
		return User{}, Session{}, "", err
	}
	secret, ss := s.newSession(u.ID, KindSession, d)
	key := hashToken(token)
	err = s.st.Update(func(tx *store.Tx) error {
		cur, ok, err := store.Get[Invite](tx, store.BucketInvites, key)
		if err != nil {
			return err
		}
		if !ok {
			return ErrInviteNotFound
		}
		if err := cur.usable(s.now()); err != nil {
			return err
		}
		cur.Used++
		if err := store.Put(tx, store.BucketInvites, key, cur); err != nil {
			return err
		}
		if err := insertUser(tx, u); err != nil {
			return err
		}
		return putSession(tx, secret, ss)
	})
	if err != nil {
		return User{}, Session{}, "", fmt.Errorf("join by invite: %w", err)
	}
	s.changed()
	s.log.Info("user joined by invite", "user", u.Name, "invite", inv.ID)
	return u.Public(), ss, secret, nil
}

// RevokeInvite stops an invite from being used.
func (s *Service) RevokeInvite(id string) error {
	found := false
	err := s.st.Update(func(tx *store.Tx) error {
		found = false
		var key string
		var inv Invite
		err := store.Each(tx, store.BucketInvites, "", func(k string, i Invite) error {
			if i.ID == id {
				key, inv, found = k, i, true
				return store.ErrStop
			}
			return nil
		})
		if err != nil || !found {
			return err
		}
		inv.Revoked = true
		return store.Put(tx, store.BucketInvites, key, inv)
	})
	if err != nil {
		return fmt.Errorf("revoke invite: %w", err)
	}
	if !found {
		return ErrInviteNotFound
	}
	return nil
}

func sortSessions(ss []Session) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].LastSeen.After(ss[j].LastSeen) })
}
