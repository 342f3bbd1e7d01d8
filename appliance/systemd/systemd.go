package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier talks to the service manager over $NOTIFY_SOCKET.
type Notifier struct {
	log *slog.Logger
}

// NewNotifier returns a Notifier; logger may be nil.
func NewNotifier(logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Notifier{log: logger}
}

// Enabled reports whether a service manager is listening.
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("notify service manager", "state", state, "err", err)
	}
}

// Ready tells the manager start-up is complete, with a status line.
func (n *Notifier) Ready(status string) {
	n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// Status sets the status line `systemctl status` shows.
func (n *Notifier) Status(status string) { n.send("STATUS=" + status) }

// Stopping tells the manager shutdown has begun.
func (n *Notifier) Stopping() { n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping") }

// WatchdogInterval returns how often the manager expects a ping (zero when
// the watchdog is off).
func (n *Notifier) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("read watchdog settings", "err", err)
		return 0
	}
	return d
}

// RunWatchdog pings the watchdog at half its interval for as long as check
// passes, until ctx ends. A failing check withholds the ping (so the manager
// restarts a hung service) and is logged.
func (n *Notifier) RunWatchdog(ctx context.Context, check func() error) {
	every := n.WatchdogInterval() / 2
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := check(); err != nil {
			n.log.Error("liveness check failed; withholding watchdog ping", "err", err)
		} else {
			n.send(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Listeners returns the stream sockets passed by socket activation, by
// their FileDescriptorName (e.g. "https", "http"); nil when none were
// passed. The LISTEN_* variables are cleared so children do not inherit them.
func Listeners() (map[string]net.Listener, error) {
	if os.Getenv("LISTEN_FDS") == "" {
		return nil, nil
	}
	named, err := activation.ListenersWithNames()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	out := map[string]net.Listener{}
	for name, ls := range named {
		for _, l := range ls {
			if l == nil {
				continue
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("socket activation: more than one socket named %q", name)
			}
			out[name] = l
		}
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	return out, nil
}
