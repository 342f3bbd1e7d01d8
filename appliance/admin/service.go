package admin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store"
)

// SocketName is the admin socket's file name in the data directory.
const SocketName = "admin.sock"

// Ops are the administration operations. Service runs them in-process and
// Client runs them through the daemon's socket.
type Ops interface {
	Status(ctx context.Context) (Status, error)
	Users(ctx context.Context) ([]auth.User, error)
	AddUser(ctx context.Context, nu auth.NewUser) (auth.User, error)
	SetPassword(ctx context.Context, name, password string) error
	SetDisabled(ctx context.Context, name string, disabled bool) (auth.User, error)
	CreateInvite(ctx context.Context, req InviteRequest) (NewInvite, error)
	Invites(ctx context.Context) ([]auth.Invite, error)
	RevokeInvite(ctx context.Context, id string) error
	SetupToken(ctx context.Context) (string, error)
	Backup(ctx context.Context, w io.Writer) (int64, error)
	Doctor(ctx context.Context) ([]Check, error)
}

// Status describes the appliance for `hearth admin` commands.
type Status struct {
	Running bool   `json:"running"` // answered by the daemon
	Version string `json:"version"`
	Data    string `json:"data"`
	URL     string `json:"url"`
}

// InviteRequest is an invite to create.
type InviteRequest struct {
	Uses int           `json:"uses"`
	TTL  time.Duration `json:"ttl"`
	Role string        `json:"role"`
}

// NewInvite is a created invite with its one-time secret and link.
type NewInvite struct {
	Invite auth.Invite `json:"invite"`
	Token  string      `json:"token"`
	URL    string      `json:"url"`
}

// Service runs the operations on an open store.
type Service struct {
	Auth    *auth.Service
	Store   *store.Store
	Version string
	Data    string
	BaseURL string // for invite links
	Running bool
	// Disconnect closes a user's realtime connections after they are
	// disabled or their password is reset; nil does nothing.
	Disconnect func(userID string)
	// Checks reports the running parts' health for `hearth doctor`; nil
	// reports only the store, disk, clock and data directory.
	Checks func(ctx context.Context) []Check
}

var _ Ops = (*Service)(nil)

// Status implements Ops.
func (s *Service) Status(context.Context) (Status, error) {
	return Status{Running: s.Running, Version: s.Version, Data: s.Data, URL: s.BaseURL}, nil
}

// Users implements Ops.
func (s *Service) Users(context.Context) ([]auth.User, error) { return s.Auth.Users() }

// AddUser implements Ops.
func (s *Service) AddUser(ctx context.Context, nu auth.NewUser) (auth.User, error) {
	return s.Auth.CreateUser(ctx, nu)
}

// SetPassword implements Ops.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	u, err := s.Auth.UserByName(name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	if err := s.Auth.SetPassword(ctx, u.ID, password); err != nil {
		return err
	}
	s.disconnect(u.ID)
	return nil
}

// SetDisabled implements Ops.
func (s *Service) SetDisabled(_ context.Context, name string, disabled bool) (auth.User, error) {
	u, err := s.Auth.UserByName(name)
	if err != nil {
		return auth.User{}, fmt.Errorf("user %q: %w", name, err)
	}
	u, err = s.Auth.SetDisabled(u.ID, disabled)
	if err == nil && disabled {
		s.disconnect(u.ID)
	}
	return u, err
}

func (s *Service) disconnect(id string) {
	if s.Disconnect != nil {
		s.Disconnect(id)
	}
}

// CreateInvite implements Ops.
func (s *Service) CreateInvite(_ context.Context, req InviteRequest) (NewInvite, error) {
	inv, token, err := s.Auth.CreateInvite(auth.InviteRequest{CreatedBy: "admin cli", Uses: req.Uses, TTL: req.TTL, Role: req.Role})
	if err != nil {
		return NewInvite{}, err
	}
	return NewInvite{Invite: inv, Token: token, URL: s.BaseURL + "/join/" + token}, nil
}

// Invites implements Ops.
func (s *Service) Invites(context.Context) ([]auth.Invite, error) { return s.Auth.Invites() }

// RevokeInvite implements Ops.
func (s *Service) RevokeInvite(_ context.Context, id string) error { return s.Auth.RevokeInvite(id) }

// SetupToken implements Ops.
func (s *Service) SetupToken(context.Context) (string, error) { return s.Auth.SetupToken() }

// Backup implements Ops: a consistent snapshot while the store is in use.
func (s *Service) Backup(_ context.Context, w io.Writer) (int64, error) { return s.Store.Backup(w) }

// Doctor implements Ops.
func (s *Service) Doctor(ctx context.Context) ([]Check, error) {
	checks := []Check{{Name: "database", Status: CheckOK, Detail: fmt.Sprintf("%s, %s", s.Store.Path(), BytesText(s.Store.Size()))}}
	if err := s.Store.Ping(); err != nil {
		checks[0] = Check{Name: "database", Status: CheckFail, Detail: err.Error(), Fix: "restore a backup: hearth restore FILE"}
	}
	checks = append(checks, DataDirCheck(s.Data), DiskCheck(s.Data), ClockCheck(time.Now()))
	if need, err := s.Auth.SetupRequired(); err == nil && need {
		checks = append(checks, Check{Name: "setup", Status: CheckWarn, Detail: "no account yet",
			Fix: "open " + s.BaseURL + "/setup with the token from `hearth admin setup-token`"})
	}
	if s.Checks != nil {
		checks = append(checks, s.Checks(ctx)...)
	}
	return checks, nil
}
