package auth

// Benchmarks of sign-in cost at the real argon2id parameters. They run only
// with -bench (`make bench` runs them); the unit tests use cheap parameters.

import (
	"context"
	"testing"

	"github.com/hearth-home/hearth/appliance/store/storetest"
)

const benchPassword = "correct horse battery staple"

// BenchmarkHashPassword measures one argon2id hash at DefaultHashParams: the
// cost of setting or changing a password.
func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hashPassword(benchPassword, DefaultHashParams); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogin measures a whole successful sign-in against a real store:
// look up the user, check the argon2id hash at DefaultHashParams, and commit
// the new session to disk.
func BenchmarkLogin(b *testing.B) {
	s, err := New(Config{Store: storetest.Open(b), Hash: DefaultHashParams})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, NewUser{Name: "mum", Password: benchPassword}); err != nil {
		b.Fatal(err)
	}
	d := Device{Name: "bench", Address: "127.0.0.1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := s.Login(ctx, "mum", benchPassword, d); err != nil {
			b.Fatal(err)
		}
	}
}
