package certs_test

import (
	"context"
	"crypto/x509"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

// TestLocalRenewal runs the Manager in a synctest bubble, whose fake clock
// certmagic's renewal ticker and expiry checks use too (time.Now and timers
// are the bubble's), so weeks pass in milliseconds: the leaf is not renewed
// early, is renewed once a third of its lifetime is left, the new leaf is
// served and chains to the same CA, and a restarted Manager serves the
// renewed leaf from storage.
func TestLocalRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const life = 30 * 24 * time.Hour
		kv := certstest.NewMemKV()
		log, _ := testLogger(t)
		cfg := certs.Config{
			KV:           kv,
			Names:        []string{"hearth.local", "192.168.1.20"},
			LeafLifetime: life,
			ClockFloor:   time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), // the bubble starts in 2000
			Logger:       log,
		}
		m, err := certs.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v", err)
		}
		pool := caPool(t, m)
		first := served(t, m, "hearth.local")
		firstIP := served(t, m, "") // no SNI: the primary name

		verify := func(leaf *x509.Certificate, name string) {
			t.Helper()
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
				t.Fatalf("leaf for %s does not verify against the CA: %v", name, err)
			}
		}
		verify(first, "hearth.local")
		if got := first.NotAfter.Sub(first.NotBefore); got < life || got > life+2*time.Hour {
			t.Fatalf("leaf lifetime = %s, want about %s", got, life)
		}

		// Just before the renewal window (a third of the lifetime left):
		// still the same certificate.
		window := first.NotAfter.Add(-(first.NotAfter.Sub(first.NotBefore)) / 3)
		time.Sleep(time.Until(window) - 2*certs.DefaultRenewCheckInterval)
		synctest.Wait()
		if got := served(t, m, "hearth.local"); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("leaf renewed at %s, before its renewal window opens at %s", time.Now(), window)
		}

		// Past the window and one renewal check later: renewed.
		time.Sleep(4 * certs.DefaultRenewCheckInterval)
		synctest.Wait()
		second := served(t, m, "hearth.local")
		if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
			t.Fatalf("leaf not renewed by %s (window opened %s, expires %s)", time.Now(), window, first.NotAfter)
		}
		if !second.NotAfter.After(first.NotAfter) {
			t.Fatalf("renewed leaf expires %s, not after the old one's %s", second.NotAfter, first.NotAfter)
		}
		verify(second, "hearth.local")
		if got := served(t, m, ""); got.SerialNumber.Cmp(firstIP.SerialNumber) == 0 {
			t.Fatal("the primary name's leaf served without SNI was not renewed")
		}
		st := m.Status()
		if !st.Ready || st.Error != "" {
			t.Fatalf("Status after renewal = %+v, want ready without error", st)
		}
		for _, c := range st.Certificates {
			if !c.NotAfter.After(first.NotAfter) {
				t.Errorf("Status: %s expires %s, want the renewed expiry", c.Name, c.NotAfter)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		// A restart loads the renewed leaf and the same CA.
		m2, err := certs.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Start(context.Background()); err != nil {
			t.Fatalf("restart: %v", err)
		}
		if got := served(t, m2, "hearth.local"); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
			t.Errorf("after restart, serial %s is served, want the renewed %s", got.SerialNumber, second.SerialNumber)
		}
		if string(m2.CACertPEM()) != string(m.CACertPEM()) {
			t.Error("after restart, the CA changed")
		}
		m2.Close()
	})
}
