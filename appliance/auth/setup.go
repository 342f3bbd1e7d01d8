package auth

import (
	"context"
	"fmt"

	"github.com/hearth-home/hearth/appliance/store"
)

const keySetupToken = "setup_token"

// SetupRequired reports whether no account exists yet.
func (s *Service) SetupRequired() (bool, error) {
	var n int
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		n, err = tx.Count(store.BucketUsers)
		return err
	})
	return n == 0, err
}

// SetupToken returns the one-time setup token, creating it if Hearth has no
// account yet. After setup it returns ErrAlreadySetUp.
func (s *Service) SetupToken() (string, error) {
	var token string
	err := s.st.Update(func(tx *store.Tx) error {
		n, err := tx.Count(store.BucketUsers)
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrAlreadySetUp
		}
		raw, err := tx.GetRaw(store.BucketMeta, keySetupToken)
		if err != nil {
			return err
		}
		if raw != nil {
			token = string(raw)
			return nil
		}
		token = randomID(15)
		return tx.PutRaw(store.BucketMeta, keySetupToken, []byte(token))
	})
	return token, err
}

// Setup creates the first admin account with the one-time setup token and
// signs it in. The token is consumed in the same transaction.
func (s *Service) Setup(ctx context.Context, token string, nu NewUser, d Device) (User, Session, string, error) {
	nu.Role = RoleAdmin
	u, err := s.newUserRecord(ctx, nu)
	if err != nil {
		return User{}, Session{}, "", err
	}
	secret, ss := s.newSession(u.ID, KindSession, d)
	err = s.st.Update(func(tx *store.Tx) error {
		n, err := tx.Count(store.BucketUsers)
		if err != nil {
			return err
		}
		if n > 0 {
			return ErrAlreadySetUp
		}
		want, err := tx.GetRaw(store.BucketMeta, keySetupToken)
		if err != nil {
			return err
		}
		if want == nil || !equalSecret(token, string(want)) {
			return ErrBadSetupToken
		}
		if err := insertUser(tx, u); err != nil {
			return err
		}
		if err := tx.Delete(store.BucketMeta, keySetupToken); err != nil {
			return err
		}
		return putSession(tx, secret, ss)
	})
	if err != nil {
		return User{}, Session{}, "", fmt.Errorf("setup: %w", err)
	}
	s.changed()
	s.log.Info("setup complete: first admin created", "user", u.Name)
	return u.Public(), ss, secret, nil
}
