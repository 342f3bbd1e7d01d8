package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// cheap keeps tests fast; the real costs are measured by the benchmark.
var cheap = auth.HashParams{Memory: 64, Time: 1, Threads: 1}

func newService(t *testing.T) (*auth.Service, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := auth.New(auth.Config{Store: storetest.Open(t), Hash: cheap, Now: clk.Now,
		SessionIdle: time.Hour, SessionMax: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

var ctx = context.Background()

func setup(t *testing.T, s *auth.Service) (auth.User, string) {
	t.Helper()
	tok, err := s.SetupToken()
	if err != nil {
		t.Fatal(err)
	}
	u, _, secret, err := s.Setup(ctx, tok, auth.NewUser{Name: "mum", Password: "correct horse"}, auth.Device{Name: "laptop", Address: "192.0.2.1"})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return u, secret
}

func TestSetupOnceWithToken(t *testing.T) {
	s, _ := newService(t)
	if req, _ := s.SetupRequired(); !req {
		t.Fatal("SetupRequired() = false on an empty store")
	}
	tok, _ := s.SetupToken()
	tok2, _ := s.SetupToken()
	if tok == "" || tok != tok2 {
		t.Fatalf("SetupToken() = %q then %q, want one stable token", tok, tok2)
	}
	_, _, _, err := s.Setup(ctx, "wrong", auth.NewUser{Name: "mum", Password: "correct horse"}, auth.Device{})
	if !errors.Is(err, auth.ErrBadSetupToken) {
		t.Fatalf("Setup(wrong token) = %v, want ErrBadSetupToken", err)
	}
	if req, _ := s.SetupRequired(); !req {
		t.Fatal("a failed setup left an account behind")
	}
	u, secret := setup(t, s)
	if u.Role != auth.RoleAdmin || u.PassHash != "" {
		t.Fatalf("setup user = %+v, want admin without hash", u)
	}
	if _, _, err := s.Authenticate(secret, ""); err != nil {
		t.Fatalf("Authenticate(setup session) = %v", err)
	}
	_, _, _, err = s.Setup(ctx, tok, auth.NewUser{Name: "dad", Password: "correct horse"}, auth.Device{})
	if !errors.Is(err, auth.ErrAlreadySetUp) {
		t.Fatalf("second Setup = %v, want ErrAlreadySetUp", err)
	}
	if _, err := s.SetupToken(); !errors.Is(err, auth.ErrAlreadySetUp) {
		t.Fatalf("SetupToken after setup = %v, want ErrAlreadySetUp", err)
	}
}

func TestCreateUserValidation(t *testing.T) {
	s, _ := newService(t)
	setup(t, s)
	tests := []struct {
		nu   auth.NewUser
		want error
	}{
		{auth.NewUser{Name: "Bad Name", Password: "long enough"}, auth.ErrInvalidName},
		{auth.NewUser{Name: "-dash", Password: "long enough"}, auth.ErrInvalidName},
		{auth.NewUser{Name: "kid", Password: "short"}, auth.ErrWeakPassword},
		{auth.NewUser{Name: "kid", Password: "long enough", Role: "root"}, auth.ErrInvalidRole},
		{auth.NewUser{Name: "kid", DisplayName: "a\x00b", Password: "long enough"}, auth.ErrInvalidDisplay},
		{auth.NewUser{Name: "mum", Password: "long enough"}, auth.ErrNameTaken},
		{auth.NewUser{Name: "kid", Password: "long enough"}, nil},
	}
	for _, tt := range tests {
		_, err := s.CreateUser(ctx, tt.nu)
		if !errors.Is(err, tt.want) {
			t.Errorf("CreateUser(%q, role %q) = %v, want %v", tt.nu.Name, tt.nu.Role, err, tt.want)
		}
	}
	users, _ := s.Users()
	if len(users) != 2 || users[0].Name != "kid" || users[1].Name != "mum" {
		t.Fatalf("Users() = %+v, want kid, mum", users)
	}
}

func TestLoginSessionsAndExpiry(t *testing.T) {
	s, clk := newService(t)
	setup(t, s)
	if _, _, _, err := s.Login(ctx, "mum", "wrong password", auth.Device{Address: "192.0.2.9"}); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("Login(wrong) = %v", err)
	}
	if _, _, _, err := s.Login(ctx, "nobody", "whatever1", auth.Device{Address: "192.0.2.9"}); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("Login(unknown) = %v", err)
	}
	_, ss, tok, err := s.Login(ctx, "mum", "correct horse", auth.Device{Name: "phone", Address: "192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	u, got, err := s.Authenticate(tok, "192.0.2.9")
	if err != nil || u.Name != "mum" || got.ID != ss.ID {
		t.Fatalf("Authenticate = %v %v %v", u, got, err)
	}
	list, _ := s.Sessions(u.ID)
	if len(list) != 2 {
		t.Fatalf("Sessions() = %d, want 2 (setup + phone)", len(list))
	}
	// Idle expiry: used within the hour keeps it alive, an idle hour ends it.
	clk.Add(50 * time.Minute)
	if _, _, err := s.Authenticate(tok, "192.0.2.9"); err != nil {
		t.Fatalf("Authenticate after 50m = %v", err)
	}
	clk.Add(50 * time.Minute)
	if _, _, err := s.Authenticate(tok, "192.0.2.9"); err != nil {
		t.Fatalf("Authenticate 50m after last use = %v", err)
	}
	clk.Add(61 * time.Minute)
	if _, _, err := s.Authenticate(tok, ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Authenticate after idle hour = %v, want ErrUnauthenticated", err)
	}
	if _, _, err := s.Authenticate("hs_forged", ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Authenticate(forged) = %v", err)
	}
}

func TestAbsoluteExpiry(t *testing.T) {
	s, clk := newService(t)
	_, tok := setup(t, s)
	for range 30 {
		clk.Add(50 * time.Minute)
		if _, _, err := s.Authenticate(tok, ""); err != nil {
			break
		}
	}
	if _, _, err := s.Authenticate(tok, ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("session used every 50m for 25h = %v, want ended by the 24h limit", err)
	}
}

func TestRevokeAndPasswordChange(t *testing.T) {
	s, _ := newService(t)
	u, first := setup(t, s)
	_, phone, phoneTok, _ := s.Login(ctx, "mum", "correct horse", auth.Device{Name: "phone"})
	_, _, tabletTok, _ := s.Login(ctx, "mum", "correct horse", auth.Device{Name: "tablet"})
	if err := s.Revoke(u.ID, phone.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(phoneTok, ""); err == nil {
		t.Fatal("revoked session still works")
	}
	if err := s.Revoke(u.ID, phone.ID); !errors.Is(err, auth.ErrSessionNotFound) {
		t.Fatalf("second Revoke = %v", err)
	}
	_, cur, _ := s.Authenticate(first, "")
	if err := s.ChangePassword(ctx, u.ID, "wrong one", "new password", cur.ID); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("ChangePassword(wrong current) = %v", err)
	}
	if err := s.ChangePassword(ctx, u.ID, "correct horse", "new password", cur.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(tabletTok, ""); err == nil {
		t.Fatal("other session survived a password change")
	}
	if _, _, err := s.Authenticate(first, ""); err != nil {
		t.Fatalf("current session ended by its own password change: %v", err)
	}
	if _, _, _, err := s.Login(ctx, "mum", "new password", auth.Device{}); err != nil {
		t.Fatalf("Login(new password) = %v", err)
	}
}

func TestDisableUser(t *testing.T) {
	s, _ := newService(t)
	admin, _ := setup(t, s)
	kid, _ := s.CreateUser(ctx, auth.NewUser{Name: "kid", Password: "long enough"})
	_, _, tok, _ := s.Login(ctx, "kid", "long enough", auth.Device{})
	if _, err := s.SetDisabled(kid.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(tok, ""); err == nil {
		t.Fatal("disabled user's session still works")
	}
	if _, _, _, err := s.Login(ctx, "kid", "long enough", auth.Device{}); !errors.Is(err, auth.ErrUserDisabled) {
		t.Fatalf("Login(disabled) = %v", err)
	}
	if _, err := s.SetDisabled(admin.ID, true); !errors.Is(err, auth.ErrLastAdmin) {
		t.Fatalf("disabling the last admin = %v, want ErrLastAdmin", err)
	}
	if _, err := s.SetDisabled(kid.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Login(ctx, "kid", "long enough", auth.Device{}); err != nil {
		t.Fatalf("Login(re-enabled) = %v", err)
	}
}

func TestLoginThrottle(t *testing.T) {
	s, clk := newService(t)
	setup(t, s)
	d := auth.Device{Address: "192.0.2.50"}
	for i := range 5 {
		if _, _, _, err := s.Login(ctx, "mum", "guess"+string(rune('a'+i)), d); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("guess %d = %v", i, err)
		}
	}
	// The sixth failure starts a pause; even the right password waits.
	s.Login(ctx, "mum", "guess-f", d)
	_, _, _, err := s.Login(ctx, "mum", "correct horse", d)
	var te *auth.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 || te.RetryAfter > time.Minute {
		t.Fatalf("Login while throttled = %v, want ThrottledError within a minute", err)
	}
	clk.Add(time.Minute + time.Second)
	if _, _, _, err := s.Login(ctx, "mum", "correct horse", d); err != nil {
		t.Fatalf("Login after the pause = %v", err)
	}
	// Per address: many accounts from one address.
	for i := range 25 {
		s.Login(ctx, "nobody"+string(rune('a'+i)), "whatever1", auth.Device{Address: "2001:db8::1"})
	}
	if _, _, _, err := s.Login(ctx, "mum", "correct horse", auth.Device{Address: "2001:db8::2"}); !errors.As(err, &te) {
		t.Fatalf("Login from a flooding /64 = %v, want throttled", err)
	}
}

func TestInvites(t *testing.T) {
	s, clk := newService(t)
	setup(t, s)
	inv, tok, err := s.CreateInvite(auth.InviteRequest{CreatedBy: "mum", Uses: 1, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckInvite("nope"); !errors.Is(err, auth.ErrInviteNotFound) {
		t.Fatalf("CheckInvite(bad) = %v", err)
	}
	// A refused join (weak password) does not use the invite up.
	if _, _, _, err := s.AcceptInvite(ctx, tok, auth.NewUser{Name: "kid", Password: "short"}, auth.Device{}); !errors.Is(err, auth.ErrWeakPassword) {
		t.Fatalf("AcceptInvite(weak) = %v", err)
	}
	u, _, sess, err := s.AcceptInvite(ctx, tok, auth.NewUser{Name: "kid", Password: "long enough"}, auth.Device{})
	if err != nil || u.Role != auth.RoleMember {
		t.Fatalf("AcceptInvite = %+v, %v", u, err)
	}
	if _, _, err := s.Authenticate(sess, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.AcceptInvite(ctx, tok, auth.NewUser{Name: "kid2", Password: "long enough"}, auth.Device{}); !errors.Is(err, auth.ErrInviteUsedUp) {
		t.Fatalf("reused invite = %v, want ErrInviteUsedUp", err)
	}
	_, tok2, _ := s.CreateInvite(auth.InviteRequest{CreatedBy: "mum", Uses: 5, TTL: time.Hour})
	clk.Add(2 * time.Hour)
	if _, err := s.CheckInvite(tok2); !errors.Is(err, auth.ErrInviteExpired) {
		t.Fatalf("expired invite = %v", err)
	}
	inv3, tok3, _ := s.CreateInvite(auth.InviteRequest{CreatedBy: "mum", Uses: 5, TTL: time.Hour})
	if err := s.RevokeInvite(inv3.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckInvite(tok3); !errors.Is(err, auth.ErrInviteRevoked) {
		t.Fatalf("revoked invite = %v", err)
	}
	list, _ := s.Invites()
	status := map[string]string{}
	for _, i := range list {
		status[i.ID] = i.Status
	}
	if status[inv.ID] != auth.InviteUsedUp || status[inv3.ID] != auth.InviteRevoked {
		t.Fatalf("invite statuses = %v", status)
	}
	if _, _, err := s.CreateInvite(auth.InviteRequest{Uses: 1000}); !errors.Is(err, auth.ErrInvalidInvite) {
		t.Fatalf("CreateInvite(1000 uses) = %v", err)
	}
}

func TestConcurrentInviteAcceptOnlyOnce(t *testing.T) {
	s, _ := newService(t)
	setup(t, s)
	_, tok, _ := s.CreateInvite(auth.InviteRequest{Uses: 1, TTL: time.Hour})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, err := s.AcceptInvite(ctx, tok, auth.NewUser{Name: "kid" + string(rune('a'+i)), Password: "long enough"}, auth.Device{})
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	users, _ := s.Users()
	if ok != 1 || len(users) != 2 {
		t.Fatalf("single-use invite accepted %d times, %d users", ok, len(users))
	}
}

func TestTokensAndSweep(t *testing.T) {
	s, clk := newService(t)
	u, _ := setup(t, s)
	pat, ss, err := s.CreateToken(u.ID, "backup script")
	if err != nil || ss.Kind != auth.KindToken {
		t.Fatal(err)
	}
	clk.Add(48 * time.Hour) // past idle and the session limit, within the token's
	if _, _, err := s.Authenticate(pat, ""); err != nil {
		t.Fatalf("token after 48h = %v", err)
	}
	n, err := s.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("Sweep() = %d, %v, want the one ended session", n, err)
	}
}
