package proof_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

// fakeClock is a clock a test moves, also backwards.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Jump(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestClockJumps: session idle and absolute expiry, sign-in throttling and
// invite expiry hold when the clock jumps forward and back (an NTP step,
// an RTC-less Pi booting in 1970 and then syncing).
func TestClockJumps(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	const idle, absolute = time.Hour, 24 * time.Hour
	a, err := auth.New(auth.Config{Store: storetest.Open(t), Hash: cheap, Now: clk.Now, SessionIdle: idle, SessionMax: absolute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.CreateUser(ctx, auth.NewUser{Name: "mum", Password: pw, Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	login := func() string {
		t.Helper()
		_, _, tok, err := a.Login(ctx, "mum", pw, auth.Device{Address: "192.168.1.5"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := func(tok string) bool {
		_, _, err := a.Authenticate(tok, "192.168.1.5")
		return err == nil
	}
	checks := 0
	step := func(what string, d time.Duration, tok string, want bool) {
		t.Helper()
		clk.Jump(d)
		checks++
		if got := valid(tok); got != want {
			t.Errorf("%s (clock %+v → %s): session valid = %v, want %v", what, d, clk.Now().Format(time.RFC3339), got, want)
		}
	}

	tok := login()
	step("used within the idle limit", 59*time.Minute, tok, true)
	step("idle limit passed by a forward jump", 61*time.Minute, tok, false)
	step("clock steps back: an ended session stays ended", -3*time.Hour, tok, false)

	tok = login()
	step("clock jumps back a year", -365*24*time.Hour, tok, true)
	step("clock comes back, idle meanwhile", 365*24*time.Hour+30*time.Minute, tok, true)
	for range 23 { // in use every 55 minutes: never idle
		step("in use", 55*time.Minute, tok, true)
	}
	step("absolute limit passed although in use", 2*time.Hour, tok, false)

	// Throttling: a backward jump does not lift a pause; waiting does.
	var te *auth.ThrottledError
	for i := 0; i < 30 && !errors.As(err, &te); i++ {
		_, _, _, err = a.Login(ctx, "mum", "wrong", auth.Device{Address: "192.168.1.9"})
	}
	if te == nil {
		t.Fatal("no throttling after 30 wrong passwords")
	}
	clk.Jump(-time.Hour)
	checks++
	if _, _, _, err := a.Login(ctx, "mum", pw, auth.Device{Address: "192.168.1.9"}); !errors.As(err, &te) {
		t.Errorf("after the clock stepped back, sign-in is no longer paused: %v", err)
	}
	clk.Jump(time.Hour + te.RetryAfter + time.Second)
	checks++
	if _, _, _, err := a.Login(ctx, "mum", pw, auth.Device{Address: "192.168.1.9"}); err != nil {
		t.Errorf("after the pause, sign-in = %v", err)
	}

	// Invites: expiry is absolute; a backward jump after expiry does not
	// bring one back for long, and a forward jump ends it.
	_, itok, err := a.CreateInvite(auth.InviteRequest{CreatedBy: "mum", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		what string
		d    time.Duration
		want bool
	}{
		{"fresh", 0, true},
		{"forward past its TTL", 2 * time.Hour, false},
		{"days later", 72 * time.Hour, false},
	} {
		clk.Jump(s.d)
		checks++
		if _, err := a.CheckInvite(itok); (err == nil) != s.want {
			t.Errorf("invite %s: usable = %v, want %v", s.what, err == nil, s.want)
		}
	}
	t.Logf("clock checks: %d", checks)
}
