package web

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/metrics"
	"github.com/hearth-home/hearth/appliance/transfer"
)

// Config configures a Server.
type Config struct {
	Auth    *auth.Service     // required
	Hub     *hub.Hub          // required
	Chat    *chat.Service     // required
	UI      fs.FS             // the web app's files, index.html at the root; required
	Metrics *metrics.Registry // nil: a private registry
	Logger  *slog.Logger      // nil: discard
	Name    string            // appliance name shown to clients
	Version string
	// TLS is true when the handler is served over HTTPS: cookies become
	// Secure and responses carry HSTS.
	TLS bool
	// Ready reports whether the appliance can serve (the store answers);
	// nil means always ready.
	Ready func() error
	// CACert returns the local CA certificate (PEM) devices should trust;
	// nil, or a nil result, means there is none (TLS off or ACME).
	CACert func() []byte
	// MobileConfig returns an iOS profile installing the CA; nil: none.
	MobileConfig func() ([]byte, error)
	// TURNCredentials returns short-lived relay credentials for a user,
	// with URLs naming host; nil means there is no relay.
	TURNCredentials func(host, userID string) (any, error)
	// RelayStats returns the relay's live view for admins; nil: none.
	RelayStats func() any
	// Voice runs realtime messages whose type starts with "voice."; nil
	// refuses them.
	Voice func(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error
	// Transfer runs file transfer: realtime messages whose type starts
	// with "transfer.", guests and the transfer routes (transfer.go); nil
	// refuses them.
	Transfer *transfer.Service
	// GuestTURNCredentials returns relay credentials for a paired guest
	// (user is "guest:<transfer id>") valid no later than until; nil:
	// guests get none.
	GuestTURNCredentials func(host, user string, until time.Time) (any, error)
	// Tailnet links sign-in by tailnet identity to the tailnet node
	// (tailnet.go); its zero value means no tailnet.
	Tailnet TailnetConfig
	// Addresses lists where this Hearth can be reached (connect.go); nil:
	// none known.
	Addresses func() []Address
	// Components reports each part's state (certs, mdns, tailnet) for the
	// body of /readyz; nil: none. It must be cheap.
	Components func() map[string]any
}

// Server is Hearth's HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *routeMux
	metrics *metrics.Registry
	reqs    *metrics.CounterVec
	index   []byte
}

// New builds the handler and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil || cfg.Hub == nil || cfg.Chat == nil || cfg.UI == nil {
		return nil, errors.New("web: Auth, Hub, Chat and UI are required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: newRouteMux(), metrics: cfg.Metrics}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = metrics.NewRegistry()
	}
	s.reqs = s.metrics.NewCounterVec("hearth_http_requests_total", "HTTP requests served, by status class.", "code")
	index, err := fs.ReadFile(cfg.UI, "index.html")
	if err != nil {
		return nil, errors.New("web: the UI has no index.html")
	}
	s.index = index
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Access-Control-Allow-Origin", "*") // the Connect page checks each address
		w.Write([]byte("ok\n"))
	})
	m.Handle("GET /readyz", s.public(s.handleReady))
	m.Handle("GET /metrics", s.public(s.handleMetrics))

	m.Handle("GET /api/v1/status", s.public(s.handleStatus))
	m.Handle("POST /api/v1/setup", s.public(s.handleSetup))
	m.Handle("POST /api/v1/auth/login", s.public(s.handleLogin))
	m.Handle("POST /api/v1/auth/logout", s.signedIn(s.handleLogout))
	m.Handle("GET /api/v1/me", s.signedIn(s.handleMe))
	m.Handle("PATCH /api/v1/me", s.signedIn(s.handleUpdateMe))
	m.Handle("POST /api/v1/me/password", s.signedIn(s.handleChangePassword))
	m.Handle("GET /api/v1/sessions", s.signedIn(s.handleSessions))
	m.Handle("DELETE /api/v1/sessions/{id}", s.signedIn(s.handleRevokeSession))
	m.Handle("POST /api/v1/tokens", s.signedIn(s.handleCreateToken))
	m.Handle("GET /api/v1/invites/{token}", s.public(s.handleCheckInvite))
	m.Handle("POST /api/v1/invites/{token}/accept", s.public(s.handleAcceptInvite))
	m.Handle("GET /api/v1/qr", s.signedIn(s.handleQR))
	m.Handle("GET /api/v1/ws", s.memberOrGuest(s.handleWS, s.handleGuestWS))

	m.Handle("GET /api/v1/admin/users", s.admin(s.handleListUsers))
	m.Handle("POST /api/v1/admin/users", s.admin(s.handleCreateUser))
	m.Handle("POST /api/v1/admin/users/{id}/password", s.admin(s.handleResetPassword))
	m.Handle("POST /api/v1/admin/users/{id}/disable", s.admin(s.handleDisableUser))
	m.Handle("GET /api/v1/admin/invites", s.admin(s.handleListInvites))
	m.Handle("POST /api/v1/admin/invites", s.admin(s.handleCreateInvite))
	m.Handle("DELETE /api/v1/admin/invites/{id}", s.admin(s.handleRevokeInvite))

	s.chatRoutes()
	s.trustRoutes()
	s.tailnetRoutes()
	s.connectRoutes()
	s.transferRoutes()
	m.Handle("GET /api/v1/turn/credentials", s.memberOrGuest(s.handleTURNCredentials, s.handleGuestTURN))
	m.Handle("GET /api/v1/admin/relay", s.admin(s.handleRelayStats))
	m.Handle("/api/", s.public(func(w http.ResponseWriter, r *http.Request, _ *identity) error {
		return errorf(http.StatusNotFound, "not_found", "No such API endpoint: %s %s.", r.Method, r.URL.Path)
	}))
	s.uiRoutes()
}

// ServeHTTP applies the security headers, body limits, panic recovery and
// metrics to every request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", p)
			if sw.status == 0 {
				s.writeError(sw, r, errors.New("panic"))
			}
		}
		s.reqs.With(strconv.Itoa(sw.code()/100) + "xx").Inc()
	}()
	s.securityHeaders(sw.Header())
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func isLoopback(r *http.Request) bool {
	ip := net.ParseIP(clientAddr(r))
	return ip != nil && ip.IsLoopback()
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.log.Warn("not ready", "err", err)
			return errorf(http.StatusServiceUnavailable, "not_ready", "Hearth is not ready yet.")
		}
	}
	body := map[string]any{"ready": true}
	if s.cfg.Components != nil {
		body["components"] = s.cfg.Components()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, id *identity) error {
	if !isLoopback(r) && (id == nil || id.user.Role != auth.RoleAdmin) {
		if id == nil {
			return auth.ErrUnauthenticated
		}
		return errForbidden
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	return s.metrics.WriteText(w)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ *identity) error {
	need, err := s.cfg.Auth.SetupRequired()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": s.cfg.Name, "version": s.cfg.Version, "setup_required": need})
	return nil
}

func (s *Server) handleTURNCredentials(w http.ResponseWriter, r *http.Request, id *identity) error {
	if s.cfg.TURNCredentials == nil {
		return errorf(http.StatusNotFound, "no_relay", "This Hearth runs no TURN relay.")
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	c, err := s.cfg.TURNCredentials(host, id.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleRelayStats(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if s.cfg.RelayStats == nil {
		return errorf(http.StatusNotFound, "no_relay", "This Hearth runs no TURN relay.")
	}
	writeJSON(w, http.StatusOK, s.cfg.RelayStats())
	return nil
}
