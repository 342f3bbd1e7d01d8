package web

import (
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/hearth-home/hearth/appliance/auth"
)

// TailnetConfig links the web layer to Hearth's node on the tailnet: sign-in
// by tailnet identity (WhoIs) and the admin's mapping of tailnet logins to
// accounts. Its zero value means Hearth is not on a tailnet: the routes
// answer 404.
type TailnetConfig struct {
	// FromTailnet reports whether r came in over the tailnet listener
	// (not the LAN); nil means never.
	FromTailnet func(r *http.Request) bool
	// Identify returns who is behind r on the tailnet. It is asked only
	// for requests FromTailnet.
	Identify func(r *http.Request) (TailnetPeer, error)
	// Logins keeps the mapping of tailnet logins to accounts; required
	// with FromTailnet.
	Logins TailnetLogins
	// Status returns the node's state for the admin panel; nil: none.
	Status func() any
}

// TailnetPeer is the person (or tagged device) behind a request from the
// tailnet.
type TailnetPeer struct {
	LoginName   string `json:"login_name"`   // e.g. alice@example.com; empty for a tagged device
	DisplayName string `json:"display_name"` // e.g. Alice Smith
	NodeName    string `json:"node_name"`    // the device, e.g. alices-phone.tail1234.ts.net
	// Person is false for a tagged device, which belongs to the tailnet
	// and is never signed in as an account.
	Person bool `json:"person"`
}

// TailnetLogin maps a tailnet login to a Hearth account.
type TailnetLogin struct {
	Login  string `json:"login"`
	UserID string `json:"user_id"`
}

// TailnetLogins stores the admin's mapping of tailnet logins to accounts.
type TailnetLogins interface {
	// TailnetLogins lists the mappings, sorted by login.
	TailnetLogins() ([]TailnetLogin, error)
	// SetTailnetLogin maps login to the account userID, replacing an
	// earlier mapping of login.
	SetTailnetLogin(login, userID string) error
	// DeleteTailnetLogin removes login's mapping; a missing one is no
	// error.
	DeleteTailnetLogin(login string) error
}

// maxLoginLen bounds a tailnet login name.
const maxLoginLen = 256

var (
	errNotOnTailnet = errorf(http.StatusNotFound, "not_found", "Sign-in by tailnet identity works only over the tailnet.")
	errNoTailnet    = errorf(http.StatusNotFound, "no_tailnet", "This Hearth is not on a tailnet.")
)

func (s *Server) tailnetRoutes() {
	m := s.mux
	m.Handle("GET /api/v1/auth/tailnet", s.public(s.handleTailnetWhoAmI))
	m.Handle("POST /api/v1/auth/tailnet", s.public(s.handleTailnetSignIn))
	m.Handle("GET /api/v1/admin/tailnet/logins", s.admin(s.handleTailnetLogins))
	m.Handle("PUT /api/v1/admin/tailnet/logins/{login}", s.admin(s.handleSetTailnetLogin))
	m.Handle("DELETE /api/v1/admin/tailnet/logins/{login}", s.admin(s.handleDeleteTailnetLogin))
}

// fromTailnet reports whether r came over the tailnet listener.
func (s *Server) fromTailnet(r *http.Request) bool {
	t := s.cfg.Tailnet
	return t.FromTailnet != nil && t.Identify != nil && t.Logins != nil && t.FromTailnet(r)
}

// tailnetAccount finds the peer behind r and the account its login maps to
// ("" when none).
func (s *Server) tailnetAccount(r *http.Request) (TailnetPeer, string, error) {
	if !s.fromTailnet(r) {
		return TailnetPeer{}, "", errNotOnTailnet
	}
	p, err := s.cfg.Tailnet.Identify(r)
	if err != nil {
		return TailnetPeer{}, "", &Error{Status: http.StatusForbidden, Code: "tailnet_unknown_peer",
			Message: "Hearth could not tell who you are on the tailnet; try again.", Err: err}
	}
	if !p.Person {
		return p, "", nil
	}
	logins, err := s.cfg.Tailnet.Logins.TailnetLogins()
	if err != nil {
		return p, "", err
	}
	for _, l := range logins {
		if strings.EqualFold(l.Login, p.LoginName) {
			return p, l.UserID, nil
		}
	}
	return p, "", nil
}

// handleTailnetWhoAmI tells the sign-in page whether to offer sign-in by
// tailnet identity: 404 unless the request came over the tailnet.
func (s *Server) handleTailnetWhoAmI(w http.ResponseWriter, r *http.Request, _ *identity) error {
	p, userID, err := s.tailnetAccount(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"peer": p, "mapped": userID != ""})
	return nil
}

// handleTailnetSignIn signs in the person behind a request from the
// tailnet, without a password, when an admin mapped their tailnet login to
// an account.
func (s *Server) handleTailnetSignIn(w http.ResponseWriter, r *http.Request, _ *identity) error {
	p, userID, err := s.tailnetAccount(r)
	if err != nil {
		return err
	}
	switch {
	case !p.Person:
		return errorf(http.StatusForbidden, "tailnet_tagged_device",
			"%s is a tagged device, not a person's: sign in with a name and password.", p.NodeName)
	case userID == "":
		s.log.Info("tailnet sign-in refused: login not mapped", "login", p.LoginName, "node", p.NodeName)
		return errorf(http.StatusForbidden, "tailnet_login_not_mapped",
			"Your tailnet login %s is not linked to a Hearth account. Sign in with your password, or ask an admin to link it (Admin, Tailnet).", p.LoginName)
	}
	d := s.device(r)
	u, ss, token, err := s.cfg.Auth.SignInVouched(userID, "tailnet "+p.LoginName, d)
	if err != nil {
		return err
	}
	return s.signedInResponse(w, http.StatusOK, u, ss, token)
}

type tailnetLoginView struct {
	TailnetLogin
	UserName    string `json:"user_name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

func (s *Server) handleTailnetLogins(w http.ResponseWriter, r *http.Request, _ *identity) error {
	t := s.cfg.Tailnet
	if t.Logins == nil {
		// Not an error for the admin page: it says the tailnet is off.
		writeJSON(w, http.StatusOK, map[string]any{"enabled": false, "logins": []tailnetLoginView{}})
		return nil
	}
	logins, err := t.Logins.TailnetLogins()
	if err != nil {
		return err
	}
	out := make([]tailnetLoginView, 0, len(logins))
	for _, l := range logins {
		v := tailnetLoginView{TailnetLogin: l}
		if u, err := s.cfg.Auth.User(l.UserID); err == nil {
			v.UserName, v.DisplayName = u.Name, u.DisplayName
		}
		out = append(out, v)
	}
	resp := map[string]any{"enabled": true, "logins": out}
	if t.Status != nil {
		resp["status"] = t.Status()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type setTailnetLoginRequest struct {
	UserID string `json:"user_id"`
}

func validLogin(login string) error {
	if login == "" || len(login) > maxLoginLen || strings.ContainsFunc(login, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return errorf(http.StatusUnprocessableEntity, "invalid_tailnet_login",
			"A tailnet login is its login name as the tailnet shows it, e.g. alice@example.com or alice@github.")
	}
	return nil
}

func (s *Server) handleSetTailnetLogin(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if s.cfg.Tailnet.Logins == nil {
		return errNoTailnet
	}
	login := r.PathValue("login")
	if err := validLogin(login); err != nil {
		return err
	}
	var req setTailnetLoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.cfg.Auth.User(req.UserID)
	if err != nil {
		return err
	}
	if u.Disabled {
		return auth.ErrUserDisabled
	}
	if err := s.cfg.Tailnet.Logins.SetTailnetLogin(login, u.ID); err != nil {
		return err
	}
	s.log.Info("tailnet login linked", "login", login, "user", u.Name)
	writeJSON(w, http.StatusOK, tailnetLoginView{TailnetLogin: TailnetLogin{Login: login, UserID: u.ID}, UserName: u.Name, DisplayName: u.DisplayName})
	return nil
}

func (s *Server) handleDeleteTailnetLogin(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if s.cfg.Tailnet.Logins == nil {
		return errNoTailnet
	}
	login := r.PathValue("login")
	if err := validLogin(login); err != nil {
		return err
	}
	logins, err := s.cfg.Tailnet.Logins.TailnetLogins()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(logins, func(l TailnetLogin) bool { return strings.EqualFold(l.Login, login) }) {
		return errorf(http.StatusNotFound, "tailnet_login_not_found", "No account is linked to the tailnet login %s.", login)
	}
	if err := s.cfg.Tailnet.Logins.DeleteTailnetLogin(login); err != nil {
		return err
	}
	s.log.Info("tailnet login unlinked", "login", login)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
