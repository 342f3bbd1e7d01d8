package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
)

// DefaultResumeWait is how long a lost transfer waits for the other side
// (PROTOCOL.md section 3.4).
const DefaultResumeWait = 10 * time.Minute

// Event is a server event about one transfer (transfer.signal,
// transfer.resume, transfer.cancelled, transfer.gone).
type Event struct {
	Type string
	Data json.RawMessage
}

// SessionConfig connects the two parties of an accepted transfer through
// the appliance's signaling.
type SessionConfig struct {
	ID   string // the transfer's id
	Conn ConnConfig
	// Send sends a client message (transfer.signal, transfer.resume) with
	// its data; the caller adds ts and nonce. Required.
	Send func(ctx context.Context, typ string, data map[string]any) error
	// Events carries the server's events for this transfer. Required.
	Events <-chan Event
	// ResumeWait bounds the wait for a lost connection to come back;
	// zero means DefaultResumeWait.
	ResumeWait time.Duration
	// OnConnect is called each time a connection comes up (for the
	// verification string and the candidate pair); nil: nothing.
	OnConnect func(c *Conn)
	// OnLost is called when a connection is lost and a resume begins;
	// nil: nothing.
	OnLost func(err error)
	Logger *slog.Logger // nil: discard
}

func (cfg *SessionConfig) defaults() {
	if cfg.ResumeWait == 0 {
		cfg.ResumeWait = DefaultResumeWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Conn.Logger == nil {
		cfg.Conn.Logger = cfg.Logger
	}
}

// ErrGone: the server forgot the transfer, or the other side cancelled it
// through the appliance.
var ErrGone = errors.New("the transfer ended on the appliance")

type eventData struct {
	Reason    string                     `json:"reason"`
	SDP       *webrtc.SessionDescription `json:"sdp"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate"`
}

func (cfg *SessionConfig) signal(ctx context.Context) func(Signal) {
	return func(s Signal) {
		data := map[string]any{"id": cfg.ID}
		if s.SDP != nil {
			data["sdp"] = s.SDP
		} else {
			data["candidate"] = s.Candidate
		}
		if err := cfg.Send(ctx, "transfer.signal", data); err != nil {
			cfg.Logger.Debug("send signal", "err", err)
		}
	}
}

// endedBy reads a transfer.cancelled or transfer.gone event as an error;
// nil for other events.
func endedBy(ev Event) error {
	var d eventData
	json.Unmarshal(ev.Data, &d)
	switch ev.Type {
	case "transfer.cancelled":
		if d.Reason == "" {
			d.Reason = "cancelled"
		}
		return &PeerError{Cancel: true, Reason: d.Reason}
	case "transfer.gone":
		return fmt.Errorf("%w (%s)", ErrGone, d.Reason)
	}
	return nil
}

// RunSender connects as the offerer and sends until the receiver says
// done, resuming on a new connection (transfer.resume, a new offer) each
// time one is lost, for up to ResumeWait without progress.
func RunSender(ctx context.Context, cfg SessionConfig, s *Sender) error {
	cfg.defaults()
	deadline := time.Now().Add(cfg.ResumeWait)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: the other side did not come back within %s", ErrDisconnected, cfg.ResumeWait)
			}
			if err := cfg.Send(ctx, "transfer.resume", map[string]any{"id": cfg.ID}); err != nil {
				cfg.Logger.Debug("send resume", "err", err)
			}
		}
		progressed, err := sendAttempt(ctx, &cfg, s)
		cfg.Logger.Debug("sender: connection ended", "attempt", attempt, "opened", progressed, "err", err)
		if !errors.Is(err, ErrDisconnected) {
			return err
		}
		if progressed {
			deadline = time.Now().Add(cfg.ResumeWait)
		}
		if cfg.OnLost != nil {
			cfg.OnLost(err)
		}
		select { // a moment before the next offer
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// sendAttempt runs one connection; progressed reports whether its channel
// opened.
func sendAttempt(ctx context.Context, cfg *SessionConfig, s *Sender) (bool, error) {
	conn, dc, err := NewOfferer(cfg.Conn, cfg.signal(ctx))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	opened := make(chan struct{})
	result := make(chan error, 1)
	go func() { result <- s.run(ctx, dc, conn.Lost(), func() { close(opened) }) }()
	connected := conn.Connected()
	wasOpen := false
	// An attempt that never connects is given up after a while: the other
	// side may have missed the offer.
	giveUp := time.NewTimer(30 * time.Second)
	defer giveUp.Stop()
	for {
		select {
		case err := <-result:
			return wasOpen, err
		case <-opened:
			opened, wasOpen = nil, true
			giveUp.Stop()
		case <-connected:
			connected = nil
			if cfg.OnConnect != nil {
				cfg.OnConnect(conn)
			}
		case <-giveUp.C:
			conn.Close()
		case ev := <-cfg.Events:
			if err := endedBy(ev); err != nil {
				conn.Close()
				<-result
				return wasOpen, err
			}
			switch ev.Type {
			case "transfer.signal":
				var d eventData
				if json.Unmarshal(ev.Data, &d) == nil {
					if err := conn.Apply(Signal{SDP: d.SDP, Candidate: d.Candidate}); err != nil {
						cfg.Logger.Debug("apply signal", "err", err)
					}
				}
			case "transfer.resume":
				// The receiver lost its side: start over unless this
				// connection is still being set up.
				cfg.Logger.Debug("sender: the receiver asks to resume", "open", wasOpen)
				if wasOpen {
					conn.Close()
				}
			}
		}
	}
}

// RunReceiver answers the sender's offers and receives until every file
// has an outcome, answering each new offer (a resume) on a new
// connection, for up to ResumeWait without progress.
func RunReceiver(ctx context.Context, cfg SessionConfig, r *Receiver) error {
	cfg.defaults()
	var (
		conn      *Conn
		result    chan error
		connected <-chan struct{}
		dcs       <-chan *webrtc.DataChannel
	)
	stop := func() {
		if conn != nil {
			conn.Close()
			if result != nil {
				<-result
			}
			conn, result, connected, dcs = nil, nil, nil, nil
		}
	}
	defer stop()
	wait := time.NewTimer(cfg.ResumeWait)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			return fmt.Errorf("%w: the sender did not come back within %s", ErrDisconnected, cfg.ResumeWait)
		case <-connected:
			connected = nil
			if cfg.OnConnect != nil {
				cfg.OnConnect(conn)
			}
		case dc := <-dcs:
			dcs = nil
			result = make(chan error, 1)
			lost, sw := conn.Lost(), conn.messages(dc)
			go func() { result <- r.run(ctx, dc, lost, sw) }()
			wait.Stop() // a running channel has no deadline
		case err := <-result:
			result = nil
			cfg.Logger.Debug("receiver: connection ended", "err", err)
			if !errors.Is(err, ErrDisconnected) {
				return err
			}
			conn.Close()
			conn, connected, dcs = nil, nil, nil
			wait.Reset(cfg.ResumeWait)
			if cfg.OnLost != nil {
				cfg.OnLost(err)
			}
			if err := cfg.Send(ctx, "transfer.resume", map[string]any{"id": cfg.ID}); err != nil {
				cfg.Logger.Debug("send resume", "err", err)
			}
		case ev := <-cfg.Events:
			if err := endedBy(ev); err != nil {
				return err
			}
			if ev.Type != "transfer.signal" {
				continue // a resume: the sender will offer
			}
			var d eventData
			if json.Unmarshal(ev.Data, &d) != nil {
				continue
			}
			if d.SDP != nil && d.SDP.Type == webrtc.SDPTypeOffer {
				cfg.Logger.Debug("receiver: new offer")
				stop() // a new offer replaces the old connection
				wait.Reset(cfg.ResumeWait)
				c, err := NewAnswerer(cfg.Conn, *d.SDP, cfg.signal(ctx))
				if err != nil {
					cfg.Logger.Warn("answer offer", "err", err)
					continue
				}
				conn, connected, dcs = c, c.Connected(), c.DataChannel()
				continue
			}
			if conn != nil {
				if err := conn.Apply(Signal{Candidate: d.Candidate}); err != nil {
					cfg.Logger.Debug("apply signal", "err", err)
				}
			}
		}
	}
}
