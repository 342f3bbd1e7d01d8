package web

import (
	"net/http"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
)

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, _ *identity) error {
	users, err := s.cfg.Auth.Users()
	if err != nil {
		return err
	}
	if users == nil {
		users = []auth.User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
	return nil
}

type createUserRequest struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Password    string `json:"password"`
	Role        string `json:"role"`
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var req createUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.cfg.Auth.CreateUser(r.Context(), auth.NewUser{Name: req.Name, DisplayName: req.DisplayName, Password: req.Password, Role: req.Role})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user": u})
	return nil
}

type passwordRequest struct {
	Password string `json:"password"`
}

func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var req passwordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	uid := r.PathValue("id")
	if err := s.cfg.Auth.SetPassword(r.Context(), uid, req.Password); err != nil {
		return err
	}
	s.cfg.Hub.DisconnectUser(uid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type disableRequest struct {
	Disabled *bool `json:"disabled"`
}

func (s *Server) handleDisableUser(w http.ResponseWriter, r *http.Request, _ *identity) error {
	var req disableRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Disabled == nil {
		return errorf(http.StatusBadRequest, "invalid_request", "Say {\"disabled\": true} or false.")
	}
	uid := r.PathValue("id")
	u, err := s.cfg.Auth.SetDisabled(uid, *req.Disabled)
	if err != nil {
		return err
	}
	if u.Disabled {
		s.cfg.Hub.DisconnectUser(uid)
		if s.cfg.Transfer != nil {
			s.cfg.Transfer.ForgetUser(uid)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": u})
	return nil
}

func (s *Server) handleListInvites(w http.ResponseWriter, r *http.Request, _ *identity) error {
	list, err := s.cfg.Auth.Invites()
	if err != nil {
		return err
	}
	if list == nil {
		list = []auth.Invite{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"invites": list})
	return nil
}

type createInviteRequest struct {
	Uses       int    `json:"uses"`
	TTLSeconds int64  `json:"ttl_seconds"`
	Role       string `json:"role"`
}

func (s *Server) handleCreateInvite(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req createInviteRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > 1<<31 {
		return auth.ErrInvalidInvite
	}
	inv, token, err := s.cfg.Auth.CreateInvite(auth.InviteRequest{CreatedBy: id.user.Name, Uses: req.Uses,
		TTL: time.Duration(req.TTLSeconds) * time.Second, Role: req.Role})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"invite": inv, "token": token, "url": baseURL(r) + "/join/" + token})
	return nil
}

func (s *Server) handleRevokeInvite(w http.ResponseWriter, r *http.Request, _ *identity) error {
	if err := s.cfg.Auth.RevokeInvite(r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// baseURL is the origin the request was made to.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
