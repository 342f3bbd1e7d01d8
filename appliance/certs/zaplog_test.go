package certs

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestZapBridge(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	z := newZapLogger(log.With("component", "certs")).Named("obtain").With(zap.String("identifier", "hearth.local"))
	for _, tc := range []struct {
		write func(msg string, fields ...zap.Field)
		want  string
	}{
		{z.Debug, "level=DEBUG"},
		{z.Info, "level=DEBUG"}, // certmagic's Info is a play-by-play: Debug here
		{z.Warn, "level=WARN"},
		{z.Error, "level=ERROR"},
	} {
		buf.Reset()
		tc.write("lock acquired", zap.Error(errors.New("boom")), zap.Duration("remaining", time.Minute), zap.Strings("sans", []string{"a", "b"}),
			zap.String("remote_ip", "192.168.1.77"), zap.String("remote", "192.168.1.77:5555"))
		line := buf.String()
		if strings.Contains(line, "192.168.1.77") {
			t.Errorf("log line %q carries the client's address", line)
		}
		for _, want := range []string{tc.want, `msg="lock acquired"`, "component=certs", "logger=obtain", "identifier=hearth.local", "error=boom", "remaining=1m0s", `sans="[a b]"`} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q lacks %q", line, want)
			}
		}
	}
	quiet := newZapLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	buf.Reset()
	quiet.Info("chatter")
	if buf.Len() != 0 {
		t.Errorf("certmagic Info logged at Info level: %q", buf.String())
	}
}
