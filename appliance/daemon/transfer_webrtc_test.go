package daemon_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestTransferRelayOnlyEnforcedByServer: two pion peers that gather every
// kind of candidate make a relay-only transfer through the daemon. The
// server strips every non-relay candidate from their signaling, so each
// peer learns only the other's relay address, and the data channel still
// opens, through the built-in TURN relay.
func TestTransferRelayOnlyEnforcedByServer(t *testing.T) {
	url, cs := household(t)
	dad := whoami(t, cs["dad"])
	mumRT := openRT(t, "mum", cs["mum"], url, nil)
	dadRT := openRT(t, "dad", cs["dad"], url, nil)

	mumRT.send("transfer.offer", map[string]any{"to_user": dad.User.ID, "files": oneFile, "relay_only": true, "ref": "r"})
	id := mumRT.waitFor("transfer.created", `"ref":"r"`)["id"].(string)
	dadRT.waitFor("transfer.incoming", id)
	dadRT.send("transfer.accept", map[string]any{"id": id})
	mumRT.waitFor("transfer.accepted", id)

	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true) // host candidates on every address, for the server to strip
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	newPC := func(c *client) *webrtc.PeerConnection {
		pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: turnServers(t, c)}) // policy "all"
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	mumPC, dadPC := newPC(cs["mum"]), newPC(cs["dad"])

	// Signaling: each side's candidates and descriptions go over its
	// realtime connection; what arrives is applied and recorded.
	var mu sync.Mutex
	received := map[string][]string{} // side → candidate lines it was given
	sentOther := 0                    // non-relay candidates the peers sent
	wire := func(name string, pc *webrtc.PeerConnection, r *rt, answer bool) {
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c == nil {
				return
			}
			init := c.ToJSON()
			if c.Typ != webrtc.ICECandidateTypeRelay {
				mu.Lock()
				sentOther++
				mu.Unlock()
			}
			r.send("transfer.signal", map[string]any{"id": id, "candidate": init})
		})
		go func() {
			// Candidates that arrive before the description wait for it.
			var pending []webrtc.ICECandidateInit
			haveRemote := false
			for ev := range r.live {
				if ev.Type != "transfer.signal" {
					continue
				}
				var sig struct {
					SDP       *webrtc.SessionDescription
					Candidate *webrtc.ICECandidateInit
				}
				json.Unmarshal(ev.Data, &sig)
				switch {
				case sig.Candidate != nil:
					mu.Lock()
					received[name] = append(received[name], sig.Candidate.Candidate)
					mu.Unlock()
					if !haveRemote {
						pending = append(pending, *sig.Candidate)
						continue
					}
					if err := pc.AddICECandidate(*sig.Candidate); err != nil {
						t.Errorf("%s: add candidate: %v", name, err)
					}
				case sig.SDP != nil:
					for _, l := range strings.Split(sig.SDP.SDP, "\n") {
						if strings.HasPrefix(l, "a=candidate:") {
							mu.Lock()
							received[name] = append(received[name], l)
							mu.Unlock()
						}
					}
					if err := pc.SetRemoteDescription(*sig.SDP); err != nil {
						t.Errorf("%s: set remote description: %v", name, err)
						return
					}
					haveRemote = true
					for _, c := range pending {
						if err := pc.AddICECandidate(c); err != nil {
							t.Errorf("%s: add candidate: %v", name, err)
						}
					}
					pending = nil
					if answer {
						a, err := pc.CreateAnswer(nil)
						if err != nil {
							t.Errorf("%s: answer: %v", name, err)
							return
						}
						pc.SetLocalDescription(a)
						r.send("transfer.signal", map[string]any{"id": id, "sdp": a})
					}
				}
			}
		}()
	}
	wire("mum", mumPC, mumRT, false)
	wire("dad", dadPC, dadRT, true)

	got := make(chan string, 1)
	dadPC.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			select {
			case got <- dc.Label() + ":" + string(m.Data):
			default:
			}
		})
	})
	dc, err := mumPC.CreateDataChannel("hearth-transfer/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { dc.SendText(`{"t":"manifest"}`) })
	offer, err := mumPC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mumPC.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	mumRT.send("transfer.signal", map[string]any{"id": id, "sdp": offer})

	select {
	case m := <-got:
		if m != `hearth-transfer/1:{"t":"manifest"}` {
			t.Fatalf("dad got %q", m)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the data channel did not open through the relay; mum %s, dad %s", mumPC.ICEConnectionState(), dadPC.ICEConnectionState())
	}
	mu.Lock()
	defer mu.Unlock()
	for side, lines := range received {
		for _, l := range lines {
			if l != "" && !strings.Contains(l, " typ relay") {
				t.Errorf("%s was given a non-relay candidate: %q", side, l)
			}
		}
	}
	if len(received["mum"]) == 0 || len(received["dad"]) == 0 {
		t.Fatalf("candidates received: %v; want relay candidates on both sides", received)
	}
	if sentOther == 0 {
		t.Fatal("the peers sent no host or server-reflexive candidates: nothing was there to strip")
	}
	// (Which pair ICE then selects is not asserted: both peers and the
	// relay share one machine and its addresses here, and ICE finds
	// peer-reflexive host pairs between them that devices on a real
	// network, given only relay candidates, would not.)
}
