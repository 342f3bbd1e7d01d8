package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store"
)

// Client runs Ops through a running daemon's admin socket.
type Client struct {
	http *http.Client
}

var _ Ops = (*Client)(nil)

// Dial connects to the daemon's admin socket at path. It returns
// ErrNotRunning when no daemon answers there.
func Dial(path string) (*Client, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("reach hearth daemon at %s: %w", path, err)
	}
	c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr}}, nil
}

// ErrNotRunning means no daemon answers on the admin socket.
var ErrNotRunning = errors.New("hearth daemon is not running")

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hearth"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error wireError }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return fmt.Errorf("admin socket: status %s", resp.Status)
		}
		e.Error.sentinel = sentinels[e.Error.Code]
		return &e.Error
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status implements Ops.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/status", nil, &s)
}

// Users implements Ops.
func (c *Client) Users(ctx context.Context) ([]auth.User, error) {
	var us []auth.User
	return us, c.do(ctx, http.MethodGet, "/users", nil, &us)
}

// AddUser implements Ops.
func (c *Client) AddUser(ctx context.Context, nu auth.NewUser) (auth.User, error) {
	var u auth.User
	return u, c.do(ctx, http.MethodPost, "/users", newUser(nu), &u)
}

// SetPassword implements Ops.
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.do(ctx, http.MethodPost, "/users/"+url.PathEscape(name)+"/password", map[string]string{"Password": password}, nil)
}

// SetDisabled implements Ops.
func (c *Client) SetDisabled(ctx context.Context, name string, disabled bool) (auth.User, error) {
	var u auth.User
	return u, c.do(ctx, http.MethodPost, "/users/"+url.PathEscape(name)+"/disable", map[string]bool{"Disabled": disabled}, &u)
}

// CreateInvite implements Ops.
func (c *Client) CreateInvite(ctx context.Context, req InviteRequest) (NewInvite, error) {
	var ni NewInvite
	return ni, c.do(ctx, http.MethodPost, "/invites", req, &ni)
}

// Invites implements Ops.
func (c *Client) Invites(ctx context.Context) ([]auth.Invite, error) {
	var is []auth.Invite
	return is, c.do(ctx, http.MethodGet, "/invites", nil, &is)
}

// RevokeInvite implements Ops.
func (c *Client) RevokeInvite(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/invites/"+url.PathEscape(id), nil, nil)
}

// SetupToken implements Ops.
func (c *Client) SetupToken(ctx context.Context) (string, error) {
	var out struct{ Token string }
	return out.Token, c.do(ctx, http.MethodGet, "/setup-token", nil, &out)
}

// Backup implements Ops: it streams the daemon's snapshot into w.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://hearth/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("admin socket: backup: %s", resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("receive backup: %w", err)
	}
	return n, nil
}

// Connect reaches the daemon for dataDir through its admin socket or, when
// none runs, opens the database directly (holding its lock, so a daemon
// cannot start meanwhile). The returned close function releases either.
func Connect(dataDir string, localService func(*store.Store) (*Service, error)) (Ops, func() error, error) {
	c, err := Dial(filepath.Join(dataDir, SocketName))
	if err == nil {
		return c, func() error { return nil }, nil
	}
	if !errors.Is(err, ErrNotRunning) {
		return nil, nil, err
	}
	dbPath := filepath.Join(dataDir, store.FileName)
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("no hearth database in %s: start `hearth serve` once, or pass the right --data", dataDir)
	}
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, nil, fmt.Errorf("%w, but its admin socket %s does not answer", err, filepath.Join(dataDir, SocketName))
		}
		return nil, nil, err
	}
	svc, err := localService(st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return svc, st.Close, nil
}

// Doctor implements Ops.
func (c *Client) Doctor(ctx context.Context) ([]Check, error) {
	var cs []Check
	return cs, c.do(ctx, http.MethodGet, "/doctor", nil, &cs)
}
