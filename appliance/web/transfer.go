package web

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/transfer"
)

// GuestCookie holds a paired guest's ticket (PROTOCOL.md section 4).
const GuestCookie = "hearth_guest"

var errNoTransfer = errorf(http.StatusNotFound, "no_transfer", "File transfer is not running on this Hearth.")

func (s *Server) transferRoutes() {
	m := s.mux
	m.Handle("POST /api/v1/transfer/pair", s.public(s.handlePair))
	m.Handle("GET /api/v1/transfer/devices", s.signedIn(s.handleTransferDevices))
	m.Handle("GET /api/v1/transfer/history", s.signedIn(s.handleTransferHistory))
	m.Handle("DELETE /api/v1/transfer/history", s.signedIn(s.handleClearTransferHistory))
	// The guest's page: the app reads the code from the URL and asks
	// before pairing, so serving it consumes nothing.
	m.HandleFunc("GET /t/{code}", s.servePage)
}

type pairRequest struct {
	Code string `json:"code"`
}

func (s *Server) handlePair(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if s.cfg.Transfer == nil {
		return errNoTransfer
	}
	var req pairRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	tk, err := s.cfg.Transfer.Pair(req.Code, clientAddr(r), deviceName(r.UserAgent()))
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: GuestCookie, Value: tk.Token, Path: "/api/", HttpOnly: true, Secure: s.cfg.TLS,
		SameSite: http.SameSiteStrictMode, Expires: tk.Expires, MaxAge: int(time.Until(tk.Expires) / time.Second)})
	writeJSON(w, http.StatusOK, map[string]any{"ticket": tk.Token, "expires": tk.Expires, "transfer": tk.Transfer,
		"user_id": tk.Client.UserID, "session_id": tk.Client.SessionID})
	return nil
}

func (s *Server) handleTransferDevices(w http.ResponseWriter, r *http.Request, id *identity) error {
	if s.cfg.Transfer == nil {
		return errNoTransfer
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": s.cfg.Transfer.Devices(hub.Client{UserID: id.user.ID, SessionID: id.session.ID})})
	return nil
}

func (s *Server) handleTransferHistory(w http.ResponseWriter, r *http.Request, id *identity) error {
	if s.cfg.Transfer == nil {
		return errNoTransfer
	}
	recs, err := s.cfg.Transfer.History(id.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"transfers": recs})
	return nil
}

func (s *Server) handleClearTransferHistory(w http.ResponseWriter, r *http.Request, id *identity) error {
	if s.cfg.Transfer == nil {
		return errNoTransfer
	}
	n, err := s.cfg.Transfer.ClearHistory(id.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
	return nil
}

// guestHandler serves a paired guest: c is the client it connects as,
// until is when its ticket ends.
type guestHandler func(w http.ResponseWriter, r *http.Request, c hub.Client, until time.Time) error

// guestTicket returns the guest ticket a request carries, if it should be
// read as a guest's: an "Authorization: Bearer hg_…" header, or the guest
// cookie unless a valid session cookie comes with it and the request does
// not ask for the guest with ?guest=1 (a member's browser that also paired
// as a guest).
func (s *Server) guestTicket(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		t, _ := strings.CutPrefix(h, "Bearer ")
		t = strings.TrimSpace(t)
		return t, transfer.IsGuestTicket(t)
	}
	c, err := r.Cookie(GuestCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	if _, err := r.Cookie(CookieName); err == nil && r.URL.Query().Get("guest") != "1" {
		if id, err := s.authenticate(r); err == nil && id != nil {
			return "", false
		}
	}
	return c.Value, true
}

// memberOrGuest serves signed-in members with h and paired guests with g.
// Every other route refuses a guest ticket (it is no session).
func (s *Server) memberOrGuest(h handler, g guestHandler) http.Handler {
	member := s.signedIn(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := s.guestTicket(r)
		if !ok || s.cfg.Transfer == nil {
			member.ServeHTTP(w, r)
			return
		}
		c, until, err := s.cfg.Transfer.Guest(token)
		if err != nil {
			if _, cerr := r.Cookie(GuestCookie); cerr == nil {
				http.SetCookie(w, &http.Cookie{Name: GuestCookie, Value: "", Path: "/api/", HttpOnly: true, Secure: s.cfg.TLS,
					SameSite: http.SameSiteStrictMode, MaxAge: -1, Expires: time.Unix(1, 0)})
			}
			s.writeError(w, r, errorf(http.StatusUnauthorized, "unauthenticated", "%s.", capital(err.Error())))
			return
		}
		if err := g(w, r, c, until); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) handleGuestWS(w http.ResponseWriter, r *http.Request, c hub.Client, _ time.Time) error {
	addr, _ := netip.ParseAddr(clientAddr(r))
	c.Addr = addr.Unmap()
	return s.cfg.Hub.Serve(w, r, c)
}

func (s *Server) handleGuestTURN(w http.ResponseWriter, r *http.Request, c hub.Client, until time.Time) error {
	if s.cfg.GuestTURNCredentials == nil {
		return errorf(http.StatusNotFound, "no_relay", "This Hearth runs no TURN relay.")
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	creds, err := s.cfg.GuestTURNCredentials(host, c.UserID, until)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, creds)
	return nil
}

// transferError maps the transfer service's errors for toError.
func transferError(err error) *Error {
	var te *transfer.ThrottledError
	if errors.As(err, &te) {
		return &Error{Status: http.StatusTooManyRequests, Code: "throttled", Message: capital(te.Error()) + ".", Err: err}
	}
	return nil
}

// retryAfter is the Retry-After value for a throttled pairing, or "".
func retryAfter(err error) string {
	var te *transfer.ThrottledError
	if errors.As(err, &te) {
		return strconv.Itoa(int((te.RetryAfter + time.Second - 1) / time.Second))
	}
	return ""
}
