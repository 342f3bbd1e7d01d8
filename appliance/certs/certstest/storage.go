package certstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/certs"
)

// lockTTL is short so that the lock expiry cases take well under a second.
const lockTTL = 250 * time.Millisecond

// TestStorage checks that a certs.Storage on the KVs newKV makes honours
// certmagic's storage contract: file and directory semantics of Store,
// Load, Delete, Exists, List and Stat, fs.ErrNotExist for missing keys,
// context cancellation, and locks that are exclusive, wait for their
// holder, and expire when the holder dies. newKV must return an empty KV on
// each call. It takes about a second.
func TestStorage(t *testing.T, newKV func() certs.KV) {
	t.Helper()
	for _, tc := range storageCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newKV)
		})
	}
}

type storageCase struct {
	name string
	run  func(t *testing.T, newKV func() certs.KV)
}

func newStorage(t *testing.T, kv certs.KV) *certs.Storage {
	t.Helper()
	s, err := certs.NewStorage(certs.StorageConfig{KV: kv, LockTTL: lockTTL})
	if err != nil {
		t.Fatalf("NewStorage: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill stores each key with its own name as the value.
func fill(t *testing.T, s *certs.Storage, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Store(context.Background(), k, []byte(k)); err != nil {
			t.Fatalf("Store(%q) = %v", k, err)
		}
	}
}

var tree = []string{
	"certificates/ca1/a.example/a.example.crt",
	"certificates/ca1/a.example/a.example.key",
	"certificates/ca1/b.example/b.example.crt",
	"certificates/ca2/a.example/a.example.crt",
	"certificatesx/decoy",
	"acme/ca1/users/me/me.json",
	"top",
}

var storageCases = []storageCase{
	{"store and load", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		ctx := context.Background()
		for _, v := range [][]byte{[]byte("first"), []byte("second, longer value"), {}, {0, 0xff, '\n', 0}} {
			if err := s.Store(ctx, "a/b/c", v); err != nil {
				t.Fatalf("Store(a/b/c, %q) = %v", v, err)
			}
			got, err := s.Load(ctx, "a/b/c")
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Load(a/b/c) = %q, %v, want %q", got, err, v)
			}
		}
	}},
	{"load missing", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		fill(t, s, "a/b")
		for _, k := range []string{"nope", "a", "a/b/c", "a/bb"} {
			if _, err := s.Load(context.Background(), k); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load(%q) error = %v, want fs.ErrNotExist", k, err)
			}
		}
	}},
	{"exists", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		fill(t, s, tree...)
		for _, tc := range []struct {
			key  string
			want bool
		}{
			{"top", true},
			{"certificates", true},
			{"certificates/ca1", true},
			{"certificates/ca1/a.example/a.example.crt", true},
			{"certificates/ca", false},
			{"certificates/ca1/a.example/a.example", false},
			{"nope", false},
		} {
			if got := s.Exists(context.Background(), tc.key); got != tc.want {
				t.Errorf("Exists(%q) = %v, want %v", tc.key, got, tc.want)
			}
		}
	}},
	{"stat", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		before := time.Now().Add(-time.Second)
		fill(t, s, tree...)
		after := time.Now().Add(time.Second)
		ctx := context.Background()
		k := "certificates/ca1/b.example/b.example.crt"
		info, err := s.Stat(ctx, k)
		if err != nil || info.Key != k || !info.IsTerminal || info.Size != int64(len(k)) ||
			info.Modified.Before(before) || info.Modified.After(after) {
			t.Errorf("Stat(%q) = %+v, %v, want a file of %d bytes modified between %s and %s", k, info, err, len(k), before, after)
		}
		info, err = s.Stat(ctx, "certificates/ca1")
		if err != nil || info.Key != "certificates/ca1" || info.IsTerminal {
			t.Errorf("Stat(certificates/ca1) = %+v, %v, want a directory", info, err)
		}
		for _, k := range []string{"nope", "certificates/ca", "top/x"} {
			if _, err := s.Stat(ctx, k); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(%q) error = %v, want fs.ErrNotExist", k, err)
			}
		}
	}},
	{"list", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		fill(t, s, tree...)
		for _, tc := range []struct {
			path      string
			recursive bool
			want      []string
		}{
			{"certificates", false, []string{"certificates/ca1", "certificates/ca2"}},
			{"certificates/ca1", false, []string{"certificates/ca1/a.example", "certificates/ca1/b.example"}},
			{"certificates/ca1/a.example", false, []string{"certificates/ca1/a.example/a.example.crt", "certificates/ca1/a.example/a.example.key"}},
			{"certificates/ca1", true, []string{
				"certificates/ca1/a.example", "certificates/ca1/a.example/a.example.crt", "certificates/ca1/a.example/a.example.key",
				"certificates/ca1/b.example", "certificates/ca1/b.example/b.example.crt",
			}},
			{"", false, []string{"acme", "certificates", "certificatesx", "top"}},
			{"top", false, []string{}},
		} {
			got, err := s.List(context.Background(), tc.path, tc.recursive)
			slices.Sort(got)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("List(%q, %v) = %q, %v, want %q", tc.path, tc.recursive, got, err, tc.want)
			}
		}
		for _, p := range []string{"nope", "certificates/ca"} {
			if got, err := s.List(context.Background(), p, true); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("List(%q) = %q, %v, want fs.ErrNotExist", p, got, err)
			}
		}
	}},
	{"delete", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		fill(t, s, tree...)
		ctx := context.Background()
		for _, k := range []string{"certificates/ca1", "top", "nope", "certificates/ca"} {
			if err := s.Delete(ctx, k); err != nil {
				t.Fatalf("Delete(%q) = %v, want nil", k, err)
			}
		}
		got, err := s.List(ctx, "", true)
		want := []string{"acme", "acme/ca1", "acme/ca1/users", "acme/ca1/users/me", "acme/ca1/users/me/me.json",
			"certificates", "certificates/ca2", "certificates/ca2/a.example", "certificates/ca2/a.example/a.example.crt",
			"certificatesx", "certificatesx/decoy"}
		slices.Sort(got)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("after deletes, List(\"\", true) = %q, %v, want %q", got, err, want)
		}
		if s.Exists(ctx, "certificates/ca1/a.example/a.example.key") {
			t.Error("a file below a deleted directory still exists")
		}
	}},
	{"bad keys", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		for _, k := range []string{"", "/abs", "dir/"} {
			if err := s.Store(context.Background(), k, []byte("x")); err == nil {
				t.Errorf("Store(%q) = nil, want an error", k)
			}
		}
	}},
	{"cancelled context", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		fill(t, s, "a")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Store(ctx, "b", []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Store with a cancelled context = %v, want context.Canceled", err)
		}
		if _, err := s.Load(ctx, "a"); !errors.Is(err, context.Canceled) {
			t.Errorf("Load with a cancelled context = %v, want context.Canceled", err)
		}
		if err := s.Lock(ctx, "l"); !errors.Is(err, context.Canceled) {
			t.Errorf("Lock with a cancelled context = %v, want context.Canceled", err)
		}
	}},
	{"concurrent stores", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				k := fmt.Sprintf("c/%02d", i)
				if err := s.Store(context.Background(), k, []byte(k)); err != nil {
					t.Errorf("Store(%s) = %v", k, err)
				}
			})
		}
		wg.Wait()
		got, err := s.List(context.Background(), "c", false)
		if err != nil || len(got) != 16 {
			t.Errorf("List(c) after 16 concurrent stores = %d keys, %v", len(got), err)
		}
	}},
	{"lock is exclusive within a storage", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		ctx := context.Background()
		if err := s.Lock(ctx, "job"); err != nil {
			t.Fatalf("Lock = %v", err)
		}
		var inside atomic.Bool
		inside.Store(true)
		got := make(chan bool)
		go func() {
			if err := s.Lock(ctx, "job"); err != nil {
				t.Errorf("second Lock = %v", err)
			}
			got <- inside.Load()
			s.Unlock(ctx, "job")
		}()
		select {
		case <-got:
			t.Fatal("a second Lock succeeded while the first was held")
		case <-time.After(2 * lockTTL):
		}
		inside.Store(false)
		if err := s.Unlock(ctx, "job"); err != nil {
			t.Fatalf("Unlock = %v", err)
		}
		if stillInside := <-got; stillInside {
			t.Fatal("the second Lock returned before the first was released")
		}
		if err := s.Lock(ctx, "other"); err != nil {
			t.Fatalf("Lock(other) = %v; locks of different names must not block each other", err)
		}
		s.Unlock(ctx, "other")
	}},
	{"lock waits until the context ends", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		if err := s.Lock(context.Background(), "job"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockTTL/2)
		defer cancel()
		if err := s.Lock(ctx, "job"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock while held = %v, want context.DeadlineExceeded", err)
		}
	}},
	{"lock is exclusive across storages and kept alive", func(t *testing.T, newKV func() certs.KV) {
		kv := newKV()
		a, b := newStorage(t, kv), newStorage(t, kv)
		if err := a.Lock(context.Background(), "job"); err != nil {
			t.Fatal(err)
		}
		// Well past the TTL: the holder's refreshes must keep it.
		ctx, cancel := context.WithTimeout(context.Background(), 3*lockTTL)
		defer cancel()
		if err := b.Lock(ctx, "job"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock from a second storage while held = %v, want context.DeadlineExceeded", err)
		}
		if err := a.Unlock(context.Background(), "job"); err != nil {
			t.Fatal(err)
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		if err := b.Lock(ctx2, "job"); err != nil {
			t.Fatalf("Lock after the holder released it = %v", err)
		}
		b.Unlock(ctx2, "job")
	}},
	{"lock expires when its holder dies", func(t *testing.T, newKV func() certs.KV) {
		kv := newKV()
		dying := &freezableKV{KV: kv}
		a, b := newStorage(t, dying), newStorage(t, kv)
		if err := a.Lock(context.Background(), "job"); err != nil {
			t.Fatal(err)
		}
		dying.frozen.Store(true) // the holder's writes stop: it has died
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*lockTTL)
		defer cancel()
		if err := b.Lock(ctx, "job"); err != nil {
			t.Fatalf("Lock after the holder died = %v, want the lock once it expires", err)
		}
		if d := time.Since(start); d > 4*lockTTL {
			t.Errorf("took %s to take over a dead holder's lock, want about the TTL %s", d, lockTTL)
		}
		b.Unlock(context.Background(), "job")
	}},
	{"lock lease outlives the TTL", func(t *testing.T, newKV func() certs.KV) {
		kv := newKV()
		dying := &freezableKV{KV: kv}
		a, b := newStorage(t, dying), newStorage(t, kv)
		ctx := context.Background()
		if err := a.Lock(ctx, "job"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := a.RenewLockLease(ctx, "job", 4*lockTTL); err != nil {
			t.Fatalf("RenewLockLease = %v", err)
		}
		dying.frozen.Store(true) // no more refreshes: only the lease holds it
		short, cancel := context.WithTimeout(ctx, 2*lockTTL)
		defer cancel()
		if err := b.Lock(short, "job"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock during the holder's lease = %v, want context.DeadlineExceeded", err)
		}
		long, cancel2 := context.WithTimeout(ctx, 20*lockTTL)
		defer cancel2()
		if err := b.Lock(long, "job"); err != nil {
			t.Fatalf("Lock after the lease ran out = %v", err)
		}
		if d := time.Since(start); d < 4*lockTTL {
			t.Errorf("took the lock %s after the lease of %s began, before it ended", d, 4*lockTTL)
		}
		b.Unlock(ctx, "job")
		if err := b.RenewLockLease(ctx, "job", time.Minute); err == nil {
			t.Error("RenewLockLease of a lock not held = nil, want an error")
		}
	}},
	{"unlock of a lock not held", func(t *testing.T, newKV func() certs.KV) {
		s := newStorage(t, newKV())
		if err := s.Unlock(context.Background(), "never"); err == nil {
			t.Fatal("Unlock of a lock never taken = nil, want an error")
		}
	}},
	{"close releases locks", func(t *testing.T, newKV func() certs.KV) {
		kv := newKV()
		a, b := newStorage(t, kv), newStorage(t, kv)
		if err := a.Lock(context.Background(), "job"); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockTTL/2)
		defer cancel()
		if err := b.Lock(ctx, "job"); err != nil {
			t.Fatalf("Lock after the holder closed = %v, want it at once", err)
		}
		b.Unlock(ctx, "job")
	}},
}

// freezableKV drops every write once frozen, like a process that has died.
type freezableKV struct {
	certs.KV
	frozen atomic.Bool
}

var errFrozen = errors.New("frozen")

func (f *freezableKV) Put(key string, value []byte) error {
	if f.frozen.Load() {
		return errFrozen
	}
	return f.KV.Put(key, value)
}

func (f *freezableKV) Delete(key string) error {
	if f.frozen.Load() {
		return errFrozen
	}
	return f.KV.Delete(key)
}
