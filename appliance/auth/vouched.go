package auth

import (
	"fmt"

	"github.com/hearth-home/hearth/appliance/store"
)

// SignInVouched opens a session for the account with id without a
// password, because something the appliance trusts vouched for the person
// (their tailnet identity, mapped to this account by an admin). via names
// the voucher for the log, e.g. "tailnet alice@example.com". Disabled
// accounts are refused.
func (s *Service) SignInVouched(id, via string, d Device) (User, Session, string, error) {
	token, ss := s.newSession(id, KindSession, d)
	var u User
	err := s.st.Update(func(tx *store.Tx) error {
		var ok bool
		var err error
		u, ok, err = store.Get[User](tx, store.BucketUsers, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return ErrUserNotFound
		case u.Disabled:
			return ErrUserDisabled
		}
		return putSession(tx, token, ss)
	})
	if err != nil {
		return User{}, Session{}, "", fmt.Errorf("sign in by %s: %w", via, err)
	}
	s.log.Info("signed in", "user", u.Name, "session", ss.ID, "by", via)
	return u.Public(), ss, token, nil
}
