package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"golang.org/x/sys/unix"
)

// Listen opens the admin socket at path, readable and writable by its owner
// only. A socket left by a crashed daemon is replaced; a live one is an error.
func Listen(path string) (net.Listener, error) {
	if len(path) >= 104 {
		return nil, fmt.Errorf("admin socket path %s is too long for a unix socket; use a shorter data directory", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another hearth daemon is answering on it", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return &peerCheckListener{Listener: l}, nil
}

// peerCheckListener admits only connections from root or the daemon's own
// user, whatever the socket's permissions are.
type peerCheckListener struct{ net.Listener }

func (l *peerCheckListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if peerAllowed(c) {
			return c, nil
		}
		c.Close()
	}
}

func peerAllowed(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return false
	}
	return cred.Uid == 0 || int(cred.Uid) == os.Geteuid()
}

// Handler serves ops over HTTP for the admin socket.
func Handler(ops *Service, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{ops: ops, log: logger}
	m := http.NewServeMux()
	m.HandleFunc("GET /status", h.json(func(r *http.Request) (any, error) { return ops.Status(r.Context()) }))
	m.HandleFunc("GET /users", h.json(func(r *http.Request) (any, error) { return ops.Users(r.Context()) }))
	m.HandleFunc("POST /users", h.json(func(r *http.Request) (any, error) {
		var nu newUser
		if err := decode(r, &nu); err != nil {
			return nil, err
		}
		return ops.AddUser(r.Context(), auth.NewUser(nu))
	}))
	m.HandleFunc("POST /users/{name}/password", h.json(func(r *http.Request) (any, error) {
		var req struct{ Password string }
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return nil, ops.SetPassword(r.Context(), r.PathValue("name"), req.Password)
	}))
	m.HandleFunc("POST /users/{name}/disable", h.json(func(r *http.Request) (any, error) {
		var req struct{ Disabled bool }
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return ops.SetDisabled(r.Context(), r.PathValue("name"), req.Disabled)
	}))
	m.HandleFunc("GET /invites", h.json(func(r *http.Request) (any, error) { return ops.Invites(r.Context()) }))
	m.HandleFunc("POST /invites", h.json(func(r *http.Request) (any, error) {
		var req InviteRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return ops.CreateInvite(r.Context(), req)
	}))
	m.HandleFunc("DELETE /invites/{id}", h.json(func(r *http.Request) (any, error) {
		return nil, ops.RevokeInvite(r.Context(), r.PathValue("id"))
	}))
	m.HandleFunc("GET /doctor", h.json(func(r *http.Request) (any, error) { return ops.Doctor(r.Context()) }))
	m.HandleFunc("GET /setup-token", h.json(func(r *http.Request) (any, error) {
		t, err := ops.SetupToken(r.Context())
		return map[string]string{"token": t}, err
	}))
	m.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Hearth-Size", strconv.FormatInt(ops.Store.Size(), 10))
		if _, err := ops.Backup(r.Context(), w); err != nil {
			// Headers are gone; a cut stream fails the client's verification.
			h.log.Error("backup over admin socket", "err", err)
			panic(http.ErrAbortHandler)
		}
	})
	return m
}

type newUser struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Password    string `json:"password"`
	Role        string `json:"role"`
}

type handler struct {
	ops *Service
	log *slog.Logger
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &wireError{Code: "invalid_request", Message: "bad request body: " + err.Error()}
	}
	return nil
}

// wireError carries an error across the socket, keeping its identity for
// the sentinels a command reacts to.
type wireError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	sentinel error
}

func (e *wireError) Error() string { return e.Message }

// Unwrap lets errors.Is find the sentinel the daemon reported.
func (e *wireError) Unwrap() error { return e.sentinel }

// Sentinels the client turns back into their values, by code.
var sentinels = map[string]error{
	"already_set_up":    auth.ErrAlreadySetUp,
	"name_taken":        auth.ErrNameTaken,
	"user_not_found":    auth.ErrUserNotFound,
	"invite_not_found":  auth.ErrInviteNotFound,
	"last_admin":        auth.ErrLastAdmin,
	"invalid_name":      auth.ErrInvalidName,
	"weak_password":     auth.ErrWeakPassword,
	"invalid_role":      auth.ErrInvalidRole,
	"invalid_invite":    auth.ErrInvalidInvite,
	"invalid_display":   auth.ErrInvalidDisplay,
	"session_not_found": auth.ErrSessionNotFound,
}

func codeOf(err error) string {
	for code, s := range sentinels {
		if errors.Is(err, s) {
			return code
		}
	}
	var we *wireError
	if errors.As(err, &we) {
		return we.Code
	}
	return "error"
}

func (h *handler) json(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			h.log.Info("admin command refused", "path", r.URL.Path, "err", err)
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": wireError{Code: codeOf(err), Message: err.Error()}})
			return
		}
		json.NewEncoder(w).Encode(v)
	}
}

// Serve runs the admin API on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("admin socket: %w", err)
	}
	return nil
}
