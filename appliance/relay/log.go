package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/pion/logging"
)

// allReasons is every Reason, indexing Server.count. Never modified.
var allReasons = [...]Reason{
	ReasonAuth, ReasonExpired, ReasonWrongUser, ReasonUserQuota, ReasonAddrQuota,
	ReasonCapacity, ReasonBandwidth, ReasonRate, ReasonPeerQuota,
	ReasonLoopback, ReasonUnspecified, ReasonLinkLocal, ReasonMulticast, ReasonBroadcast,
	ReasonReserved, ReasonPrivate, ReasonProtectedPort, ReasonOwnAddress, ReasonDenied,
	ReasonFamily,
}

// Reasons lists every Reason, so that counters can be exported at zero.
func Reasons() []Reason { return slices.Clone(allReasons[:]) }

// logWindow is how often one kind of refusal is logged for one user or
// address.
const logWindow = time.Minute

// logLimiter lets one log line per key through per logWindow.
type logLimiter struct {
	mu   sync.Mutex
	seen map[string]*window
}

type window struct {
	start      time.Time
	suppressed int
}

// allow reports whether to log key now and how many were suppressed in
// its previous window.
func (l *logLimiter) allow(key string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.seen[key]
	if w != nil && now.Sub(w.start) < logWindow {
		w.suppressed++
		return 0, false
	}
	if w != nil {
		suppressed = w.suppressed
		w.start, w.suppressed = now, 0
		return suppressed, true
	}
	if l.seen == nil {
		l.seen = map[string]*window{}
	}
	if len(l.seen) >= 4096 {
		for k, w := range l.seen {
			if now.Sub(w.start) >= logWindow {
				delete(l.seen, k)
			}
		}
	}
	if len(l.seen) < 4096 {
		l.seen[key] = &window{start: now}
	}
	return 0, true
}

// refuse counts a refusal and logs it, once per logWindow for each reason
// and user (or client address when there is no user yet).
func (s *Server) refuse(r Reason, user string, attrs ...any) {
	s.refuseFrom(r, user, netip.Addr{}, attrs...)
}

func (s *Server) refuseFrom(r Reason, user string, client netip.Addr, attrs ...any) {
	if i := slices.Index(allReasons[:], r); i >= 0 {
		s.count[i].Add(1)
	}
	key := user
	if key == "" {
		key = s.fmtAddr(client)
	}
	suppressed, ok := s.logs.allow(string(r)+"\x00"+key, time.Now())
	if !ok {
		return
	}
	args := []any{"reason", string(r)}
	if user != "" {
		args = append(args, "user", user)
	}
	if client.IsValid() {
		args = append(args, "client", s.fmtAddr(client))
	}
	args = append(args, attrs...)
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Info("relay refused", args...)
}

// fmtAddr is an address as logs may show it: truncated to /24 or /48
// unless Config.LogAddrs.
func (s *Server) fmtAddr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	if s.logAddrs {
		return a.String()
	}
	return maskAddr(a)
}

func (s *Server) fmtAddrPort(ap netip.AddrPort) string {
	if s.logAddrs {
		return ap.String()
	}
	return fmt.Sprintf("%s port %d", maskAddr(ap.Addr()), ap.Port())
}

func maskAddr(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return "?"
	}
	return p.String()
}

// addrText finds IP addresses in pion's log text.
var addrText = regexp.MustCompile(`(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F.]*|\d{1,3}(?:\.\d{1,3}){3}`)

func maskText(s string) string {
	return addrText.ReplaceAllStringFunc(s, func(m string) string {
		a, err := netip.ParseAddr(m)
		if err != nil {
			return m
		}
		return maskAddr(a)
	})
}

// pionLogger bridges pion's LoggerFactory to the Server's slog.Logger.
// pion logs every datagram at debug and trace, and every refused peer
// packet at info, so its levels move down: trace and debug below
// slog.LevelDebug, info to debug, warn to info, error to warn. Lines at info
// and above are rate limited per format.
type pionLogger struct{ s *Server }

func (f pionLogger) NewLogger(scope string) logging.LeveledLogger {
	return &pionLeveled{s: f.s, log: f.s.log.With("pion", scope)}
}

type pionLeveled struct {
	s   *Server
	log *slog.Logger
}

const (
	levelPionTrace = slog.LevelDebug - 8
	levelPionDebug = slog.LevelDebug - 4
)

func (l *pionLeveled) logf(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	if level >= slog.LevelInfo {
		if _, ok := l.s.logs.allow("pion\x00"+format, time.Now()); !ok {
			return
		}
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	if !l.s.logAddrs {
		msg = maskText(msg)
	}
	l.log.Log(ctx, level, msg)
}

func (l *pionLeveled) Trace(msg string)                  { l.logf(levelPionTrace, msg, nil) }
func (l *pionLeveled) Tracef(format string, args ...any) { l.logf(levelPionTrace, format, args) }
func (l *pionLeveled) Debug(msg string)                  { l.logf(levelPionDebug, msg, nil) }
func (l *pionLeveled) Debugf(format string, args ...any) { l.logf(levelPionDebug, format, args) }
func (l *pionLeveled) Info(msg string)                   { l.logf(slog.LevelDebug, msg, nil) }
func (l *pionLeveled) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args) }
func (l *pionLeveled) Warn(msg string)                   { l.logf(slog.LevelInfo, msg, nil) }
func (l *pionLeveled) Warnf(format string, args ...any)  { l.logf(slog.LevelInfo, format, args) }
func (l *pionLeveled) Error(msg string)                  { l.logf(slog.LevelWarn, msg, nil) }
func (l *pionLeveled) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args) }
