package daemon

import (
	"context"
	"time"

	"github.com/hearth-home/hearth/appliance/transfer"
)

// newTransfer builds file transfer's signaling on the hub, with history
// in the store, and exports its counters.
func (d *Daemon) newTransfer() (*transfer.Service, error) {
	t, err := transfer.New(transfer.Config{Publish: d.hub.Publish, Online: d.hub.Clients, Device: d.deviceLabel,
		Disconnect: d.hub.DisconnectUser, Store: d.store, CodeTTL: d.cfg.TransferCodeTTL,
		Logger: d.log.With("component", "transfer")})
	if err != nil {
		return nil, err
	}
	m := d.metrics
	m.NewGaugeFunc("hearth_transfers_live", "File transfers the appliance is introducing or waiting to resume.", func() float64 { return float64(t.Stats().Live) })
	m.NewGaugeFunc("hearth_transfer_offers_total", "File transfer offers made.", func() float64 { return float64(t.Stats().Offers) })
	m.NewGaugeFunc("hearth_transfer_codes_issued_total", "Guest pairing codes made.", func() float64 { return float64(t.Stats().CodesIssued) })
	m.NewGaugeFunc("hearth_transfer_pair_failures_total", "Guest pairing attempts refused (wrong, used or expired code, or throttled).", func() float64 { return float64(t.Stats().PairFailures) })
	m.NewGaugeFunc("hearth_transfer_signals_total", "Transfer signaling messages forwarded.", func() float64 { return float64(t.Stats().Signals) })
	m.NewGaugeFunc("hearth_transfer_candidates_dropped_total", "Non-relay ICE candidates dropped from relay-only transfers.", func() float64 { return float64(t.Stats().Dropped) })
	return t, nil
}

// runTransfer sweeps expired transfers until ctx ends.
func (d *Daemon) runTransfer(ctx context.Context) {
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.transfer.Run(ctx) }()
}

// deviceLabel is the device name of a user's session ("Firefox on
// Linux", a token's label), or "".
func (d *Daemon) deviceLabel(userID, sessionID string) string {
	ss, err := d.auth.Sessions(userID)
	if err != nil {
		return ""
	}
	for _, s := range ss {
		if s.ID == sessionID {
			return s.Device
		}
	}
	return ""
}

// guestTURNCredentials are relay credentials for a paired guest that end
// with its ticket (or sooner, at the relay's usual TTL).
func (d *Daemon) guestTURNCredentials(host, user string, until time.Time) (any, error) {
	if d.relay == nil {
		return nil, errNoRelay
	}
	now := time.Now()
	c, err := d.relay.server.Credentials(host, user, now)
	if err != nil {
		return nil, err
	}
	if left := until.Sub(now); left < time.Duration(c.TTL)*time.Second {
		// Mint them as if earlier, so they lapse with the ticket.
		if c, err = d.relay.server.Credentials(host, user, now.Add(left-time.Duration(c.TTL)*time.Second)); err != nil {
			return nil, err
		}
		c.TTL = max(0, int(left/time.Second))
	}
	return c, nil
}

// disconnectUser closes a disabled (or reset) user's realtime connections
// and ends the transfers they take part in.
func (d *Daemon) disconnectUser(userID string) {
	d.hub.DisconnectUser(userID)
	if d.transfer != nil {
		d.transfer.ForgetUser(userID)
	}
}
