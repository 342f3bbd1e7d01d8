package voice_test

import (
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"net"
	"strings"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/voice"
	"github.com/pion/webrtc/v4"
)

// Example wires a Service to the realtime hub the way the daemon does: the
// hub forwards voice.* messages and ended connections to the Service, the
// Service publishes through the hub.
func Example() {
	udp, err := net.ListenPacket("udp", ":0") // the appliance's voice port
	if err != nil {
		log.Fatal(err)
	}
	var svc *voice.Service
	h := hub.New(hub.Config{
		Handle: func(ctx context.Context, c hub.Client, typ string, data json.RawMessage) error {
			if strings.HasPrefix(typ, "voice.") {
				return svc.Handle(ctx, c, typ, data)
			}
			return nil // chat's messages, elsewhere
		},
		Disconnected: func(c hub.Client) { svc.Disconnected(c) },
	})
	svc, err = voice.New(voice.Config{
		UDP:     udp,
		CanJoin: func(userID, roomID string) bool { return true }, // chat's CanRead on voice channels
		Publish: h.Publish,
		ICEServers: func(userID string) []webrtc.ICEServer {
			return nil // TURN credentials from the relay
		},
		Logger: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	st := svc.Stats() // for /metrics
	_ = st.Latency.Quantile(0.99)
}
