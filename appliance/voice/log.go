package voice

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/pion/logging"
)

// pionLogger bridges pion's LoggerFactory to the Service's slog.Logger.
// pion is chatty (every refused STUN packet, every unknown SSRC), so its
// levels move down one step: trace and debug below slog.LevelDebug, info to
// debug, warn to info, error to warn. Lines at info and above are limited
// to one per format per minute, and IP addresses in them are truncated
// (logs never carry full client addresses).
type pionLogger struct {
	log    *slog.Logger
	limits *logLimiter
}

func (f pionLogger) NewLogger(scope string) logging.LeveledLogger {
	if f.limits == nil {
		f.limits = &logLimiter{}
	}
	return &pionLeveled{limits: f.limits, log: f.log.With("pion", scope)}
}

type pionLeveled struct {
	limits *logLimiter
	log    *slog.Logger
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
	if level >= slog.LevelInfo && !l.limits.allow(format, time.Now()) {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	l.log.Log(ctx, level, maskText(msg))
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

// logLimiter lets one line per key through per minute.
type logLimiter struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (l *logLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.seen[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if l.seen == nil || len(l.seen) >= 1024 {
		l.seen = map[string]time.Time{}
	}
	l.seen[key] = now
	return true
}

// addrText finds IP addresses in pion's log text.
var addrText = regexp.MustCompile(`(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F.]*|\d{1,3}(?:\.\d{1,3}){3}`)

// maskText truncates the IP addresses in s to /24 (IPv4) or /48 (IPv6).
func maskText(s string) string {
	return addrText.ReplaceAllStringFunc(s, func(m string) string {
		a, err := netip.ParseAddr(m)
		if err != nil {
			return m
		}
		a = a.Unmap().WithZone("")
		bits := 48
		if a.Is4() {
			bits = 24
		}
		p, err := a.Prefix(bits)
		if err != nil || a.IsLoopback() {
			return m
		}
		return p.String()
	})
}
