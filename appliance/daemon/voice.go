package daemon

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/hearth-home/hearth/appliance/voice"
)

// startVoice binds the voice UDP port and starts the SFU, with ICE over
// TCP on iceTCP (the main port's share for it, see splitICE).
func (d *Daemon) startVoice(iceTCP net.Listener) error {
	addr := d.cfg.VoiceAddr()
	if d.opts.Listener != nil && d.cfg.VoiceListen == "" {
		// A handed-in listener (tests): voice on the same host, any port.
		host, _, _ := net.SplitHostPort(d.opts.Listener.Addr().String())
		addr = net.JoinHostPort(host, "0")
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		iceTCP.Close()
		return fmt.Errorf("listen on %s (voice, UDP): %w", addr, err)
	}
	v, err := voice.New(voice.Config{UDP: udp, TCP: iceTCP, CanJoin: d.chat.CanJoinVoice, Publish: d.hub.Publish,
		Logger: d.log.With("component", "voice")})
	if err != nil {
		udp.Close()
		iceTCP.Close()
		return fmt.Errorf("start voice: %w", err)
	}
	d.voice = v
	d.voiceAddr = udp.LocalAddr()
	m := d.metrics
	m.NewGaugeFunc("hearth_voice_rooms", "Voice rooms with someone in them.", func() float64 { return float64(v.Stats().Rooms) })
	m.NewGaugeFunc("hearth_voice_participants", "People in voice rooms.", func() float64 { return float64(v.Stats().Participants) })
	m.NewGaugeFunc("hearth_voice_packets_forwarded_total", "RTP packets forwarded.", func() float64 { return float64(v.Stats().PacketsForwarded) })
	m.NewGaugeFunc("hearth_voice_bytes_forwarded_total", "RTP bytes forwarded.", func() float64 { return float64(v.Stats().BytesForwarded) })
	m.NewGaugeFunc("hearth_voice_packets_lost_total", "Packets lost as receiver reports say.", func() float64 {
		st := v.Stats()
		return float64(st.PacketsLostIn + st.PacketsLostOut)
	})
	m.NewGaugeFunc("hearth_voice_forwarding_latency_p99_seconds", "99th percentile forwarding latency.", func() float64 {
		return v.Stats().Latency.Quantile(0.99).Seconds()
	})
	return nil
}

// voicePort is the voice UDP port, which relays may reach on the
// appliance's own addresses (devices that get out only through TURN);
// zero when voice is off.
func (d *Daemon) voicePort() uint16 {
	if d.voiceAddr == nil {
		return 0
	}
	ap, err := netip.ParseAddrPort(d.voiceAddr.String())
	if err != nil {
		return 0
	}
	return ap.Port()
}
