package voice_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
)

// FuzzHandle: whatever a client sends, Handle answers nil or one of the
// package's errors, and never panics.
func FuzzHandle(f *testing.F) {
	offer, err := voicetest.Offer()
	if err != nil {
		f.Fatal(err)
	}
	join, _ := json.Marshal(voice.JoinMessage{Room: "lounge", SDP: offer})
	for _, seed := range []struct{ typ, data string }{
		{voice.TypeJoin, string(join)},
		{voice.TypeJoin, `{"room":"lounge","sdp":"v=0\r\n"}`},
		{voice.TypeJoin, `{"room":""}`},
		{voice.TypeLeave, ``},
		{voice.TypeMute, `{"muted":true}`},
		{voice.TypeDeafen, `{"deafened":false}`},
		{voice.TypeFloor, `{"action":"request"}`},
		{voice.TypeMode, `{"one_talker":true}`},
		{voice.TypeSync, `null`},
		{voice.TypeSignal, `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}`},
		{voice.TypeSignal, `{"type":"offer","sdp":"v=0"}`},
		{"voice.other", `[]`},
	} {
		f.Add(seed.typ, seed.data)
	}
	h := voicetest.NewHub()
	udp, err := listenUDP()
	if err != nil {
		f.Fatal(err)
	}
	svc, err := voice.New(voice.Config{UDP: udp, Publish: h.Publish, CanJoin: func(string, string) bool { return true },
		ConnectTimeout: 500 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, typ, data string) {
		n++
		c := hub.Client{UserID: "u", SessionID: "s" + strconv.Itoa(n%50), Name: "fuzz"}
		err := svc.Handle(context.Background(), c, typ, json.RawMessage(data))
		if err != nil && voice.Code(err) == "error" {
			t.Errorf("Handle(%q, %q) = %v, not one of the package's errors", typ, data, err)
		}
	})
}
