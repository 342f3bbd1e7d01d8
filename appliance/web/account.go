package web

import (
	"net/http"
	"net/netip"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/qrcode"
)

type signInResponse struct {
	User auth.User `json:"user"`
	CSRF string    `json:"csrf"`
}

func (s *Server) device(r *http.Request) auth.Device {
	return auth.Device{Name: deviceName(r.UserAgent()), Address: clientAddr(r)}
}

// signedInResponse sets the session cookie and answers with the user and
// the session's CSRF token.
func (s *Server) signedInResponse(w http.ResponseWriter, status int, u auth.User, ss auth.Session, token string) error {
	s.setCookie(w, token, ss)
	writeJSON(w, status, signInResponse{User: u, CSRF: csrfToken(token)})
	return nil
}

type newAccountRequest struct {
	Token       string `json:"token"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Password    string `json:"password"`
}

func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var req newAccountRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, ss, token, err := s.cfg.Auth.Setup(r.Context(), req.Token,
		auth.NewUser{Name: req.Name, DisplayName: req.DisplayName, Password: req.Password}, s.device(r))
	if err != nil {
		return err
	}
	return s.signedInResponse(w, http.StatusCreated, u, ss, token)
}

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, ss, token, err := s.cfg.Auth.Login(r.Context(), req.Name, req.Password, s.device(r))
	if err != nil {
		return err
	}
	return s.signedInResponse(w, http.StatusOK, u, ss, token)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, id *identity) error {
	if err := s.cfg.Auth.Logout(id.token); err != nil {
		return err
	}
	s.cfg.Hub.DisconnectSession(id.session.ID)
	s.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, id *identity) error {
	resp := map[string]any{"user": id.user, "session_id": id.session.ID}
	if !id.bearer {
		resp["csrf"] = csrfToken(id.token)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type updateMeRequest struct {
	DisplayName string `json:"display_name"`
}

func (s *Server) handleUpdateMe(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req updateMeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.cfg.Auth.SetDisplayName(id.user.ID, req.DisplayName)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": u})
	return nil
}

type changePasswordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req changePasswordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	err := s.cfg.Auth.ChangePassword(r.Context(), id.user.ID, req.Current, req.New, id.session.ID)
	if err != nil {
		return err
	}
	s.disconnectOthers(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// disconnectOthers closes the realtime connections of a user's other
// sessions, which a password change has just ended.
func (s *Server) disconnectOthers(id *identity) {
	sessions, err := s.cfg.Auth.Sessions(id.user.ID)
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, ss := range sessions {
		live[ss.ID] = true
	}
	s.cfg.Hub.DisconnectUserExcept(id.user.ID, live)
}

type sessionView struct {
	auth.Session
	Current bool `json:"current"`
}

func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request, id *identity) error {
	list, err := s.cfg.Auth.Sessions(id.user.ID)
	if err != nil {
		return err
	}
	out := make([]sessionView, 0, len(list))
	for _, ss := range list {
		out = append(out, sessionView{Session: ss, Current: ss.ID == id.session.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request, id *identity) error {
	sid := r.PathValue("id")
	if err := s.cfg.Auth.Revoke(id.user.ID, sid); err != nil {
		return err
	}
	s.cfg.Hub.DisconnectSession(sid)
	if sid == id.session.ID {
		s.clearCookie(w)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type createTokenRequest struct {
	Name string `json:"name"`
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req createTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = "access token"
	}
	token, ss, err := s.cfg.Auth.CreateToken(id.user.ID, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "session": ss})
	return nil
}

func (s *Server) handleCheckInvite(w http.ResponseWriter, r *http.Request, _ *identity) error {
	inv, err := s.cfg.Auth.CheckInviteFrom(r.PathValue("token"), clientAddr(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": inv.Role, "expires": inv.Expires})
	return nil
}

func (s *Server) handleAcceptInvite(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var req newAccountRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, ss, token, err := s.cfg.Auth.AcceptInvite(r.Context(), r.PathValue("token"),
		auth.NewUser{Name: req.Name, DisplayName: req.DisplayName, Password: req.Password}, s.device(r))
	if err != nil {
		return err
	}
	return s.signedInResponse(w, http.StatusCreated, u, ss, token)
}

func (s *Server) handleQR(w http.ResponseWriter, r *http.Request, _ *identity) error {
	data := r.URL.Query().Get("data")
	if data == "" {
		return errorf(http.StatusBadRequest, "invalid_request", "Give the text to encode as ?data=.")
	}
	svg, err := qrcode.SVG(data)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, err = w.Write(svg)
	return err
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request, id *identity) error {
	addr, _ := netip.ParseAddr(clientAddr(r))
	return s.cfg.Hub.Serve(w, r, hub.Client{UserID: id.user.ID, SessionID: id.session.ID, Name: id.user.Name, Addr: addr.Unmap()})
}
