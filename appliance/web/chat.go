package web

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/hub"
)

func (s *Server) chatRoutes() {
	m := s.mux
	m.Handle("GET /api/v1/users", s.signedIn(s.handleDirectory))
	m.Handle("GET /api/v1/channels", s.signedIn(s.handleChannels))
	m.Handle("POST /api/v1/channels", s.signedIn(s.handleCreateChannel))
	m.Handle("PATCH /api/v1/channels/{id}", s.signedIn(s.handleUpdateChannel))
	m.Handle("POST /api/v1/dms", s.signedIn(s.handleOpenDM))
	m.Handle("GET /api/v1/channels/{id}/messages", s.signedIn(s.handleHistory))
	m.Handle("POST /api/v1/channels/{id}/messages", s.signedIn(s.handlePost))
	m.Handle("PATCH /api/v1/channels/{id}/messages/{seq}", s.signedIn(s.handleEdit))
	m.Handle("DELETE /api/v1/channels/{id}/messages/{seq}", s.signedIn(s.handleDelete))
	m.Handle("PUT /api/v1/channels/{id}/messages/{seq}/reactions/{emoji}", s.signedIn(s.handleReact(true)))
	m.Handle("DELETE /api/v1/channels/{id}/messages/{seq}/reactions/{emoji}", s.signedIn(s.handleReact(false)))
	m.Handle("POST /api/v1/channels/{id}/read", s.signedIn(s.handleRead))
	m.Handle("POST /api/v1/channels/{id}/attachments", s.signedIn(s.handleUpload))
	m.Handle("GET /api/v1/attachments/{id}", s.signedIn(s.handleDownload))
	m.Handle("GET /api/v1/notifications", s.signedIn(s.handleNotifications))
	m.Handle("GET /api/v1/search", s.signedIn(s.handleSearch))
	m.Handle("GET /api/v1/groups", s.signedIn(s.handleGroups))
	m.Handle("POST /api/v1/admin/groups", s.admin(s.handleSaveGroup))
	m.Handle("PUT /api/v1/admin/groups/{id}", s.admin(s.handleSaveGroup))
}

// member is a household member as every signed-in user sees them.
type member struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	Presence    string `json:"presence"` // online, idle or offline
}

func (s *Server) handleDirectory(w http.ResponseWriter, r *http.Request, _ *identity) error {
	users, err := s.cfg.Auth.Users()
	if err != nil {
		return err
	}
	online := s.cfg.Hub.Presence()
	out := make([]member, 0, len(users))
	for _, u := range users {
		if u.Disabled {
			continue
		}
		p := online[u.ID]
		if p == "" {
			p = "offline"
		}
		out = append(out, member{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Presence: p})
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request, id *identity) error {
	cs, err := s.cfg.Chat.Channels(id.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": cs, "last_id": s.cfg.Chat.LastEventID()})
	return nil
}

func (s *Server) handleCreateChannel(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req chat.ChannelRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch, err := s.cfg.Chat.CreateChannel(id.user, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"channel": ch})
	return nil
}

func (s *Server) handleUpdateChannel(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req chat.ChannelRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch, err := s.cfg.Chat.UpdateChannel(id.user, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": ch})
	return nil
}

type dmRequest struct {
	Members []string `json:"members"`
}

func (s *Server) handleOpenDM(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req dmRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch, err := s.cfg.Chat.OpenDM(id.user, req.Members)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": ch})
	return nil
}

// uintParam reads an optional non-negative integer query or path value.
func uintParam(v, name string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "invalid_request", "%s must be a whole number.", name)
	}
	return n, nil
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, id *identity) error {
	q := r.URL.Query()
	before, err := uintParam(q.Get("before"), "before")
	if err != nil {
		return err
	}
	after, err := uintParam(q.Get("after"), "after")
	if err != nil {
		return err
	}
	limit, err := uintParam(q.Get("limit"), "limit")
	if err != nil {
		return err
	}
	page, err := s.cfg.Chat.History(id.user.ID, r.PathValue("id"), before, after, int(min(limit, chat.MaxPage)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req chat.Post
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	m, err := s.cfg.Chat.PostMessage(r.Context(), id.user, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": m})
	return nil
}

type editRequest struct {
	Text string `json:"text"`
}

func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request, id *identity) error {
	seq, err := uintParam(r.PathValue("seq"), "the message number")
	if err != nil {
		return err
	}
	var req editRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	m, err := s.cfg.Chat.EditMessage(id.user, r.PathValue("id"), seq, req.Text)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": m})
	return nil
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, id *identity) error {
	seq, err := uintParam(r.PathValue("seq"), "the message number")
	if err != nil {
		return err
	}
	if _, err := s.cfg.Chat.DeleteMessage(id.user, r.PathValue("id"), seq); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleReact(on bool) handler {
	return func(w http.ResponseWriter, r *http.Request, id *identity) error {
		seq, err := uintParam(r.PathValue("seq"), "the message number")
		if err != nil {
			return err
		}
		m, err := s.cfg.Chat.React(id.user, r.PathValue("id"), seq, r.PathValue("emoji"), on)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"message": m})
		return nil
	}
}

type readRequest struct {
	Seq uint64 `json:"seq"`
}

func (s *Server) handleRead(w http.ResponseWriter, r *http.Request, id *identity) error {
	var req readRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.cfg.Chat.MarkRead(id.user.ID, r.PathValue("id"), req.Seq); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, id *identity) error {
	name := r.URL.Query().Get("name")
	if r.ContentLength > s.cfg.Chat.AttachmentLimit() {
		return chat.ErrTooLarge
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.Chat.AttachmentLimit()+1)
	a, err := s.cfg.Chat.Upload(r.Context(), id.user, r.PathValue("id"), name, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return chat.ErrTooLarge
		}
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"attachment": a})
	return nil
}

// handleDownload serves an attachment with Range support. Only images
// open in the browser; everything else downloads, and nothing served here
// may run script.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request, id *identity) error {
	thumb := r.URL.Query().Get("thumb") == "1"
	a, f, err := s.cfg.Chat.OpenAttachment(id.user.ID, r.PathValue("id"), thumb)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	ctype := a.Type
	if thumb {
		ctype = "image/jpeg"
	}
	disposition := "attachment"
	if inlineImage(ctype) {
		disposition = "inline"
	} else {
		ctype = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": a.Name}))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(w, r, "", st.ModTime(), f)
	return nil
}

func inlineImage(ctype string) bool {
	switch ctype {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}

func (s *Server) handleNotifications(w http.ResponseWriter, r *http.Request, id *identity) error {
	ns, err := s.cfg.Chat.Notifications(id.user.ID, 50)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": ns})
	return nil
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, id *identity) error {
	q := r.URL.Query()
	text := q.Get("q")
	if len(text) > 500 {
		return errorf(http.StatusBadRequest, "invalid_request", "A search is at most 500 characters.")
	}
	sq := chat.SearchQuery{Channel: q.Get("channel")}
	if a := q.Get("author"); a != "" {
		u, err := s.cfg.Auth.UserByName(strings.TrimPrefix(a, "@"))
		if err != nil {
			writeJSON(w, http.StatusOK, map[string]any{"results": []chat.SearchResult{}})
			return nil
		}
		sq.Author = u.ID
	}
	sq.Text = text
	res, err := s.cfg.Chat.Search(id.user.ID, sq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
	return nil
}

func (s *Server) handleGroups(w http.ResponseWriter, r *http.Request, _ *identity) error {
	writeJSON(w, http.StatusOK, map[string]any{"groups": s.cfg.Chat.Groups()})
	return nil
}

func (s *Server) handleSaveGroup(w http.ResponseWriter, r *http.Request, id *identity) error {
	var g chat.Group
	if err := decodeJSON(w, r, &g); err != nil {
		return err
	}
	g.ID = r.PathValue("id")
	g, err := s.cfg.Chat.SaveGroup(id.user, g)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": g})
	return nil
}

// HandleRealtime runs client messages arriving on the realtime connection
// (the hub's Handle hook): typing indicators for now.
func (s *Server) HandleRealtime(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error {
	if strings.HasPrefix(typ, "transfer.") && s.cfg.Transfer != nil {
		return s.cfg.Transfer.Handle(ctx, c, typ, data)
	}
	if c.Guest {
		return errors.New("a guest may send only transfer messages")
	}
	if strings.HasPrefix(typ, "voice.") && s.cfg.Voice != nil {
		return s.cfg.Voice(ctx, c, typ, data)
	}
	switch typ {
	case "typing":
		var t struct {
			Channel string `json:"channel"`
		}
		if err := json.Unmarshal(data, &t); err != nil || !s.cfg.Chat.CanRead(c.UserID, t.Channel) {
			return chat.ErrNoChannel
		}
		s.cfg.Hub.Publish(hub.Event{Type: "typing", Channel: t.Channel, Data: map[string]string{"channel": t.Channel, "user_id": c.UserID}})
		return nil
	}
	return errors.New("unknown message type " + typ)
}
