package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
)

// Names of the session cookie and the CSRF header.
const (
	CookieName = "hearth_session"
	CSRFHeader = "X-Hearth-CSRF"
)

var errForbidden = errorf(http.StatusForbidden, "forbidden", "You are not allowed to do that.")

// identity is the authenticated caller.
type identity struct {
	user    auth.User
	session auth.Session
	token   string
	bearer  bool // authenticated by Authorization header, not cookie
}

type handler func(w http.ResponseWriter, r *http.Request, id *identity) error

// csrfToken derives the CSRF token for a session secret. Only someone who
// can read the session cookie (the page itself, given it to by the API) can
// know it.
func csrfToken(sessionToken string) string {
	h := sha256.Sum256([]byte("hearth csrf\x00" + sessionToken))
	return hex.EncodeToString(h[:16])
}

// authenticate finds the caller's session, if any.
func (s *Server) authenticate(r *http.Request) (*identity, error) {
	token, bearer := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, errorf(http.StatusUnauthorized, "unauthenticated", "Use an Authorization header of the form \"Bearer TOKEN\".")
		}
		token, bearer = strings.TrimSpace(t), true
	} else if c, err := r.Cookie(CookieName); err == nil {
		token = c.Value
	}
	if token == "" {
		return nil, nil
	}
	u, ss, err := s.cfg.Auth.Authenticate(token, clientAddr(r))
	if err != nil {
		return nil, err
	}
	return &identity{user: u, session: ss, token: token, bearer: bearer}, nil
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sameOrigin refuses a request whose Origin names another site.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return errorf(http.StatusForbidden, "cross_origin", "Requests from other sites are not accepted.")
	}
	return nil
}

// checkCSRF guards state changes made with ambient credentials (cookies):
// the page must prove it read the CSRF token from the API. Before sign-in
// there is no session to ride, but the custom header still forces a
// same-origin request.
func checkCSRF(r *http.Request, id *identity) error {
	if !unsafeMethod(r.Method) || (id != nil && id.bearer) {
		return nil
	}
	if err := sameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return errorf(http.StatusForbidden, "csrf", "The request is missing its %s header; reload the page.", CSRFHeader)
	}
	if id != nil && subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(id.token))) != 1 {
		return errorf(http.StatusForbidden, "csrf", "The request's %s header does not match this session; reload the page.", CSRFHeader)
	}
	return nil
}

func (s *Server) wrap(h handler, need func(*identity) error, optionalAuth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.authenticate(r)
		if err != nil && !optionalAuth {
			if errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, auth.ErrUserDisabled) {
				s.clearCookie(w)
			}
			s.writeError(w, r, err)
			return
		}
		if err != nil {
			id = nil
		}
		if err := need(id); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := checkCSRF(r, id); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r, id); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// public routes answer without a session; they are handed the caller
// when there is a valid one (and ignore a stale one).
func (s *Server) public(h handler) http.Handler {
	return s.wrap(h, func(*identity) error { return nil }, true)
}

func (s *Server) signedIn(h handler) http.Handler {
	return s.wrap(h, func(id *identity) error {
		if id == nil {
			return auth.ErrUnauthenticated
		}
		return nil
	}, false)
}

func (s *Server) admin(h handler) http.Handler {
	return s.wrap(h, func(id *identity) error {
		if id == nil {
			return auth.ErrUnauthenticated
		}
		if id.user.Role != auth.RoleAdmin {
			return errForbidden
		}
		return nil
	}, false)
}

func (s *Server) setCookie(w http.ResponseWriter, token string, ss auth.Session) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: s.cfg.TLS,
		SameSite: http.SameSiteLaxMode, Expires: ss.Expires,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: s.cfg.TLS,
		SameSite: http.SameSiteLaxMode, MaxAge: -1, Expires: time.Unix(1, 0)})
}
