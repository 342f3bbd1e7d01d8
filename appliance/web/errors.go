package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/qrcode"
	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/transfer"
)

// Error is an API error with its HTTP status and a stable code.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error // cause, logged but not shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// known maps package sentinels to a status and code; the sentinel's own
// text, written for people, is the message.
var known = []struct {
	err    error
	status int
	code   string
}{
	{auth.ErrBadCredentials, http.StatusUnauthorized, "bad_credentials"},
	{auth.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
	{auth.ErrUserDisabled, http.StatusForbidden, "user_disabled"},
	{auth.ErrBadSetupToken, http.StatusForbidden, "bad_setup_token"},
	{auth.ErrAlreadySetUp, http.StatusConflict, "already_set_up"},
	{auth.ErrInvalidName, http.StatusUnprocessableEntity, "invalid_name"},
	{auth.ErrInvalidDisplay, http.StatusUnprocessableEntity, "invalid_display_name"},
	{auth.ErrWeakPassword, http.StatusUnprocessableEntity, "weak_password"},
	{auth.ErrInvalidRole, http.StatusUnprocessableEntity, "invalid_role"},
	{auth.ErrInvalidInvite, http.StatusUnprocessableEntity, "invalid_invite"},
	{auth.ErrNameTaken, http.StatusConflict, "name_taken"},
	{auth.ErrInviteNotFound, http.StatusNotFound, "invite_not_found"},
	{auth.ErrInviteExpired, http.StatusGone, "invite_expired"},
	{auth.ErrInviteUsedUp, http.StatusGone, "invite_used_up"},
	{auth.ErrInviteRevoked, http.StatusGone, "invite_revoked"},
	{auth.ErrUserNotFound, http.StatusNotFound, "user_not_found"},
	{auth.ErrSessionNotFound, http.StatusNotFound, "session_not_found"},
	{auth.ErrLastAdmin, http.StatusConflict, "last_admin"},
	{qrcode.ErrTooLong, http.StatusRequestEntityTooLarge, "too_large"},
	{chat.ErrNoChannel, http.StatusNotFound, "channel_not_found"},
	{chat.ErrNotMember, http.StatusForbidden, "not_member"},
	{chat.ErrNoMessage, http.StatusNotFound, "message_not_found"},
	{chat.ErrEmptyMessage, http.StatusUnprocessableEntity, "empty_message"},
	{chat.ErrMessageTooLong, http.StatusRequestEntityTooLarge, "message_too_long"},
	{chat.ErrNotAuthor, http.StatusForbidden, "not_author"},
	{chat.ErrBadChannelName, http.StatusUnprocessableEntity, "invalid_channel_name"},
	{chat.ErrChannelExists, http.StatusConflict, "channel_exists"},
	{chat.ErrBadGroupName, http.StatusUnprocessableEntity, "invalid_group_name"},
	{chat.ErrGroupExists, http.StatusConflict, "group_exists"},
	{chat.ErrNoGroup, http.StatusNotFound, "group_not_found"},
	{chat.ErrBadMembers, http.StatusUnprocessableEntity, "invalid_members"},
	{chat.ErrDMSize, http.StatusUnprocessableEntity, "invalid_members"},
	{chat.ErrTooLarge, http.StatusRequestEntityTooLarge, "file_too_large"},
	{chat.ErrQuota, http.StatusInsufficientStorage, "quota_exceeded"},
	{chat.ErrBadFileName, http.StatusUnprocessableEntity, "invalid_file_name"},
	{chat.ErrNoAttachment, http.StatusNotFound, "attachment_not_found"},
	{chat.ErrBadReaction, http.StatusUnprocessableEntity, "invalid_reaction"},
	{chat.ErrDeleted, http.StatusGone, "message_deleted"},
	{chat.ErrGuest, http.StatusForbidden, "guest"},
	{transfer.ErrBadCode, http.StatusNotFound, "invalid_code"},
	{transfer.ErrBadTicket, http.StatusUnauthorized, "unauthenticated"},
	{transfer.ErrNotFound, http.StatusNotFound, "transfer_not_found"},
	{transfer.ErrClosed, http.StatusServiceUnavailable, "shutting_down"},
}

// toError turns any handler error into an *Error.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var te *auth.ThrottledError
	if errors.As(err, &te) {
		return &Error{Status: http.StatusTooManyRequests, Code: "throttled", Message: capital(te.Error()), Err: err}
	}
	if e := transferError(err); e != nil {
		return e
	}
	for _, k := range known {
		if errors.Is(err, k.err) {
			return &Error{Status: k.status, Code: k.code, Message: capital(k.err.Error()) + ".", Err: err}
		}
	}
	if errors.Is(err, store.ErrNoSpace) {
		return &Error{Status: http.StatusInsufficientStorage, Code: "disk_full",
			Message: "The appliance's disk is full, so nothing was saved. Free some space and try again.", Err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("The request is larger than the %d bytes allowed.", mbe.Limit), Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Something went wrong on the appliance; the details are in its log.", Err: err}
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// writeError renders err as JSON and logs it if it is the server's fault.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	if e.Status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code)
	}
	var te *auth.ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(int((te.RetryAfter+time.Second-1)/time.Second)))
	}
	if ra := retryAfter(err); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 64 << 10

// decodeJSON reads exactly one JSON object into v, refusing unknown fields,
// trailing data and bodies over maxJSONBody, with messages a person can act
// on.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the request body as application/json.")
	}
	return decodeBody(http.MaxBytesReader(w, r.Body, maxJSONBody), v)
}
