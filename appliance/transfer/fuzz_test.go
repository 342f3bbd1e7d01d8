package transfer_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/transfer"
)

// FuzzDecodeMessage: whatever a client sends, Decode returns a message or
// an error wrapping ErrBadMessage or ErrTooLarge, never panics, and what
// it accepts holds the protocol's invariants; Handle answers nil or one
// of the package's coded errors.
func FuzzDecodeMessage(f *testing.F) {
	const common = `"ts":1795000000000,"nonce":"0123456789abcdef"`
	for _, seed := range []struct{ typ, data string }{
		{transfer.TypeOffer, `{` + common + `,"to_user":"u-dad","files":[{"name":"a.txt","size":3,"type":"text/plain"}],"relay_only":true}`},
		{transfer.TypeOffer, `{` + common + `,"guest":true,"files":[{"name":"../../etc/passwd","size":1}]}`},
		{transfer.TypeOffer, `{` + common + `,"to_session":"s1","files":[]}`},
		{transfer.TypeOffer, `{` + common + `,"to_user":"u","files":3}`},
		{transfer.TypeAccept, `{` + common + `,"id":"abc","ref":"r1"}`},
		{transfer.TypeDecline, `{` + common + `,"id":"abc"}`},
		{transfer.TypeCancel, `{` + common + `,"id":"abc","reason":"changed my mind"}`},
		{transfer.TypeSignal, `{` + common + `,"id":"abc","sdp":{"type":"offer","sdp":"v=0\r\na=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n"}}`},
		{transfer.TypeSignal, `{` + common + `,"id":"abc","candidate":{"candidate":"candidate:4 1 udp 41885439 198.51.100.1 49170 typ relay","sdpMid":"0","sdpMLineIndex":0}}`},
		{transfer.TypeSignal, `{` + common + `,"id":"abc","sdp":{"type":"offer","sdp":""},"candidate":{"candidate":""}}`},
		{transfer.TypeResume, `{` + common + `,"id":"abc"}`},
		{transfer.TypeResult, `{` + common + `,"id":"abc","result":"done","bytes":10,"files":2}`},
		{transfer.TypeResult, `{` + common + `,"id":"abc","result":"won","files":[1]}`},
		{transfer.TypeAccept, `{"ts":-1,"nonce":"x"}`},
		{transfer.TypeAccept, `null`},
		{transfer.TypeAccept, `{"ts":1,"nonce":"0123456789abcdef","id":"a"} trailing`},
		{"transfer.other", `{}`},
		{transfer.TypeAccept, `{"ts":1e400}`},
	} {
		f.Add(seed.typ, seed.data)
	}
	f.Fuzz(func(t *testing.T, typ, data string) {
		m, err := transfer.Decode(typ, []byte(data))
		if err != nil {
			if c := transfer.Code(err); c != "bad_message" && c != "too_large" {
				t.Fatalf("Decode error %v has code %q", err, c)
			}
		} else {
			if m.Type != typ || m.TS <= 0 || len(m.Nonce) < transfer.MinNonce || len(m.Nonce) > transfer.MaxNonce {
				t.Fatalf("Decode accepted %+v", m)
			}
			if typ == transfer.TypeOffer && (len(m.Files) == 0 || len(m.Files) > transfer.MaxFiles) {
				t.Fatalf("offer with %d files accepted", len(m.Files))
			}
			if typ == transfer.TypeSignal && (m.SDP == nil) == (m.Candidate == nil) {
				t.Fatalf("signal with sdp %v and candidate %v accepted", m.SDP, m.Candidate)
			}
			if typ != transfer.TypeOffer && m.ID == "" {
				t.Fatal("message without an id accepted")
			}
		}
		h := newHarness(t, false)
		err = h.svc.Handle(context.Background(), mumLaptop, typ, json.RawMessage(data))
		if err != nil && transfer.Code(err) == "" {
			t.Fatalf("Handle error %v has no code", err)
		}
		if err != nil && strings.Contains(err.Error(), "\x00") {
			t.Fatalf("error text has a NUL: %q", err)
		}
	})
}
