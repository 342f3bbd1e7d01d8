package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/relay"
	"github.com/hearth-home/hearth/appliance/store"
)

// turnSecrets are the relay's shared secrets, kept in the store's meta
// bucket. The current one signs new credentials; previous ones still
// validate, so rotating never breaks a call in progress.
type turnSecrets struct {
	Current  []byte    `json:"current"`
	Created  time.Time `json:"created"`
	Previous [][]byte  `json:"previous,omitempty"`
}

const (
	keyTURNSecrets    = "turn_secrets"
	turnSecretRotate  = 30 * 24 * time.Hour
	turnSecretsToKeep = 2
)

// loadTURNSecrets returns the secrets, creating the first or rotating an
// old one.
func loadTURNSecrets(st *store.Store, now time.Time) (turnSecrets, error) {
	var ts turnSecrets
	err := st.Update(func(tx *store.Tx) error {
		cur, ok, err := store.Get[turnSecrets](tx, store.BucketMeta, keyTURNSecrets)
		if err != nil {
			return err
		}
		ts = cur
		if ok && now.Sub(cur.Created) < turnSecretRotate {
			return nil
		}
		fresh, err := relay.GenerateSecret()
		if err != nil {
			return err
		}
		if ok {
			ts.Previous = append([][]byte{cur.Current}, cur.Previous...)
			if len(ts.Previous) > turnSecretsToKeep {
				ts.Previous = ts.Previous[:turnSecretsToKeep]
			}
		}
		ts.Current, ts.Created = fresh, now.UTC()
		return store.Put(tx, store.BucketMeta, keyTURNSecrets, ts)
	})
	if err != nil {
		return ts, fmt.Errorf("load TURN secret: %w", err)
	}
	return ts, nil
}

// relayParts is the relay and its sockets while it runs.
type relayParts struct {
	mu      sync.RWMutex
	secrets turnSecrets
	server  *relay.Server
}

func (r *relayParts) current() ([]byte, [][]byte) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.secrets.Current, r.secrets.Previous
}

// startRelay binds the TURN listeners and starts the relay.
func (d *Daemon) startRelay() error {
	secrets, err := loadTURNSecrets(d.store, time.Now())
	if err != nil {
		return err
	}
	lo, hi, err := config.PortRange(d.cfg.RelayPorts)
	if err != nil {
		return err
	}
	udp, err := net.ListenPacket("udp", d.cfg.TURNListen)
	if err != nil {
		return fmt.Errorf("listen on %s (TURN, UDP): %w", d.cfg.TURNListen, err)
	}
	tcp, err := net.Listen("tcp", d.cfg.TURNListen)
	if err != nil {
		udp.Close()
		return fmt.Errorf("listen on %s (TURN, TCP): %w", d.cfg.TURNListen, err)
	}
	rp := &relayParts{secrets: secrets}
	cfg := relay.Config{UDP: udp, TCP: tcp, PortMin: lo, PortMax: hi, Secrets: rp.current, IsKnownPeer: d.hub.HasAddr,
		ProtectedPorts: []uint16{uint16(portOf(d.cfg.Listen, 443)), uint16(portOf(d.cfg.HTTPListen, 80))},
		Logger:         d.log.With("component", "relay")}
	if p := d.voicePort(); p != 0 {
		cfg.OpenPorts = []uint16{p}
	}
	if d.cfg.RelayPublicIP != "" {
		cfg.PublicIP, _ = netip.ParseAddr(d.cfg.RelayPublicIP)
	}
	// Relay sockets bind where TURN listens when that is one address;
	// otherwise on the LAN address.
	if ap, err := netip.ParseAddrPort(udp.LocalAddr().String()); err == nil && !ap.Addr().IsUnspecified() {
		cfg.RelayIP = ap.Addr().Unmap()
	}
	if d.opts.RelayIP.IsValid() {
		cfg.RelayIP = d.opts.RelayIP
	}
	if !cfg.RelayIP.IsValid() {
		if _, err := relay.LANAddr(); err != nil {
			udp.Close()
			tcp.Close()
			d.relayErr = fmt.Errorf("no LAN address to relay from (%w); calls and transfers work only where devices reach each other directly", err)
			d.log.Warn("TURN relay off", "err", d.relayErr)
			return nil
		}
	}
	srv, err := relay.New(cfg)
	if err != nil {
		return fmt.Errorf("start TURN relay: %w", err)
	}
	rp.server = srv
	d.relay = rp
	return nil
}

func (d *Daemon) turnCredentials(host, userID string) (any, error) {
	if d.relay == nil {
		return nil, errNoRelay
	}
	return d.relay.server.Credentials(host, userID, time.Now())
}

func (d *Daemon) relayStats() any {
	if d.relay == nil {
		return nil
	}
	return d.relay.server.Stats()
}

var errNoRelay = errors.New("the TURN relay is off")

// relayCheck reports the relay for `hearth doctor`.
func (d *Daemon) relayCheck() admin.Check {
	if d.relay == nil {
		return admin.Check{Name: "turn", Status: admin.CheckWarn, Detail: fmt.Sprint(d.relayErr),
			Fix: "connect the box to the LAN (or set turn_listen to its address) and restart hearth"}
	}
	st := d.relay.server.Stats()
	return admin.Check{Name: "turn", Status: admin.CheckOK, Detail: fmt.Sprintf("%s relaying from %s, %d live allocations",
		d.cfg.TURNListen, d.relay.server.Addr(), len(st.Allocations))}
}

// registerRelayMetrics exports the relay's counters.
func (d *Daemon) registerRelayMetrics() {
	if d.relay == nil {
		return
	}
	m := d.metrics
	stats := func() relay.Stats { return d.relay.server.Stats() }
	m.NewGaugeFunc("hearth_relay_allocations", "Live TURN allocations.", func() float64 { return float64(len(stats().Allocations)) })
	m.NewGaugeFunc("hearth_relay_allocations_total", "TURN allocations created since start.", func() float64 { return float64(stats().AllocationsTotal) })
	m.NewGaugeFunc("hearth_relay_bytes_in_total", "Bytes relayed from peers to clients.", func() float64 { return float64(stats().BytesIn) })
	m.NewGaugeFunc("hearth_relay_bytes_out_total", "Bytes relayed from clients to peers.", func() float64 { return float64(stats().BytesOut) })
	for _, r := range relay.Reasons() {
		m.NewGaugeFunc("hearth_relay_refusals_"+string(r)+"_total", "TURN requests refused: "+string(r)+".",
			func() float64 { return float64(stats().Refusals[r]) })
	}
}
