package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/voice/voicetest"
	"github.com/pion/webrtc/v4"
)

// voiceClient joins voice through the daemon's realtime hub: a pion client
// whose messages go over the member's WebSocket.
func voiceClient(t *testing.T, c *client, base string, cfg voicetest.Config) *voicetest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/v1/ws",
		&websocket.DialOptions{HTTPClient: c.http, HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		t.Fatalf("dial realtime: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	cfg.Send = func(ctx context.Context, typ string, data json.RawMessage) error {
		b, _ := json.Marshal(map[string]any{"type": typ, "data": data})
		return ws.Write(ctx, websocket.MessageText, b)
	}
	vc, err := voicetest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var ev event
			if json.Unmarshal(b, &ev) == nil && strings.HasPrefix(ev.Type, "voice.") {
				vc.Deliver(ev.Type, ev.Data)
			}
		}
	}()
	t.Cleanup(func() {
		vc.Close()
		ws.CloseNow()
	})
	return vc
}

func turnServers(t *testing.T, c *client) []webrtc.ICEServer {
	t.Helper()
	var cred struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	}
	if s := c.do("GET", "/api/v1/turn/credentials", nil, &cred); s != 200 {
		t.Fatalf("TURN credentials = %d", s)
	}
	var urls []string
	for _, u := range cred.URLs {
		if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=udp") {
			urls = append(urls, u)
		}
	}
	return []webrtc.ICEServer{{URLs: urls, Username: cred.Username, Credential: cred.Credential}}
}

// TestVoiceFallbacks: a member whose UDP is blocked joins over ICE-TCP on
// the main HTTPS/HTTP port, and one who reaches the appliance only through
// its TURN relay joins with relay candidates; both hear a speaker.
func TestVoiceFallbacks(t *testing.T) {
	base, cs := household(t)
	lounge := channelNamed(t, cs["mum"], "lounge").ID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	speaker := voiceClient(t, cs["mum"], base, voicetest.Config{})
	if err := speaker.Join(ctx, lounge, voicetest.JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	overTCP := voiceClient(t, cs["dad"], base, voicetest.Config{TCP: true})
	if err := overTCP.Join(ctx, lounge, voicetest.JoinOptions{ListenOnly: true}); err != nil {
		t.Fatal(err)
	}
	overTURN := voiceClient(t, cs["kid"], base, voicetest.Config{ICEServers: turnServers(t, cs["kid"]), RelayOnly: true})
	if err := overTURN.Join(ctx, lounge, voicetest.JoinOptions{ListenOnly: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*voicetest.Client{speaker, overTCP, overTURN} {
		for !c.Connected() {
			if ctx.Err() != nil {
				t.Fatalf("not connected (pair %q, errors %v)", c.SelectedPair(), c.Errors())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if p := overTCP.SelectedPair(); !strings.Contains(p, "/tcp -> ") || !strings.HasSuffix(p, "/tcp") {
		t.Errorf("ICE-TCP client's pair = %q, want TCP on both ends", p)
	}
	if p := overTURN.SelectedPair(); !strings.HasPrefix(p, "relay/") {
		t.Errorf("relay-only client's pair = %q, want a relay candidate", p)
	}
	// The web server still answers on the shared port.
	if s := cs["dad"].do("GET", "/api/v1/me", nil, nil); s != 200 {
		t.Errorf("GET /api/v1/me beside ICE-TCP = %d", s)
	}

	speaker.Talk(true)
	want := uint64(25) // half a second of audio
	for overTCP.Total() < want || overTURN.Total() < want {
		if ctx.Err() != nil {
			t.Fatalf("audio received: over TCP %d, over TURN %d packets; want %d each", overTCP.Total(), overTURN.Total(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
