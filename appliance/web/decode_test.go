package web

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store"
)

// FuzzDecodeBody feeds arbitrary bodies to the decoder every API request
// goes through, for each request type: it must return a value or an *Error
// with a status and a message, and never panic.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"token":"t","name":"mum","display_name":"Mum","password":"correct horse"}`,
		`{"name":"mum","password":"x"}`,
		`{"uses":1,"ttl_seconds":3600,"role":"member"}`,
		`{"disabled":true}`,
		`{"current":"a","new":"b"}`,
		`{"name":7}`, `{"x":1}`, `{} {}`, `[`, ``, `null`, `"str"`,
	} {
		f.Add(s)
	}
	targets := []func() any{
		func() any { return new(newAccountRequest) },
		func() any { return new(loginRequest) },
		func() any { return new(updateMeRequest) },
		func() any { return new(changePasswordRequest) },
		func() any { return new(createTokenRequest) },
		func() any { return new(createUserRequest) },
		func() any { return new(passwordRequest) },
		func() any { return new(disableRequest) },
		func() any { return new(createInviteRequest) },
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, mk := range targets {
			err := decodeBody(strings.NewReader(body), mk())
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
				t.Fatalf("decodeBody(%q) = %v, want a 400 *Error with a message", body, err)
			}
		}
	})
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("save: %w", store.ErrNoSpace), 507, "disk_full"},
		{fmt.Errorf("x: %w", auth.ErrInviteUsedUp), 410, "invite_used_up"},
		{&auth.ThrottledError{RetryAfter: time.Minute}, 429, "throttled"},
		{errors.New("boom"), 500, "internal"},
	}
	for _, tt := range tests {
		e := toError(tt.err)
		if e.Status != tt.status || e.Code != tt.code || e.Message == "" || strings.Contains(e.Message, "boom") {
			t.Errorf("toError(%v) = %d %s %q, want %d %s", tt.err, e.Status, e.Code, e.Message, tt.status, tt.code)
		}
	}
}
