package store_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/store"
	bolt "go.etcd.io/bbolt"
)

type rec struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

func openAt(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenMigratesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := openAt(t, path)
	v, err := s.SchemaVersion()
	if err != nil || v != store.SchemaVersionSupported() {
		t.Fatalf("SchemaVersion() = %d, %v, want %d", v, err, store.SchemaVersionSupported())
	}
	if err := s.Update(func(tx *store.Tx) error {
		return store.Put(tx, store.BucketUsers, "u1", rec{N: 1, Text: "a"})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent
	s2 := openAt(t, path)
	err = s2.View(func(tx *store.Tx) error {
		got, ok, err := store.Get[rec](tx, store.BucketUsers, "u1")
		if err != nil || !ok || got.N != 1 {
			return fmt.Errorf("Get(u1) = %+v, %v, %v", got, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenLockedFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	openAt(t, path)
	start := time.Now()
	_, err := store.Open(path, store.Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open error = %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("second Open took %v; the timeout was not honoured", time.Since(start))
	}
}

func TestOpenNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte(store.BucketMeta))
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], 999)
		return b.Put([]byte("schema_version"), v[:])
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(path, store.Options{}); !errors.Is(err, store.ErrNewerSchema) {
		t.Fatalf("Open(newer) error = %v, want ErrNewerSchema", err)
	}
	if _, err := store.Verify(path); !errors.Is(err, store.ErrNewerSchema) {
		t.Fatalf("Verify(newer) error = %v, want ErrNewerSchema", err)
	}
}

func TestOpenCorruptRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	if err := os.WriteFile(path, []byte("this is not a database, just some text padded out to a page or so............"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(path, store.Options{}); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open(garbage) error = %v, want ErrCorrupt", err)
	}
}

func TestConcurrentWritersAllDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := openAt(t, path)
	const writers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(func(tx *store.Tx) error {
					n, err := tx.NextSeq(store.BucketUsers)
					if err != nil {
						return err
					}
					return store.Put(tx, store.BucketUsers, store.SeqKey(n), rec{N: w*1000 + i})
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.Close()
	s2 := openAt(t, path)
	seen := map[int]bool{}
	err := s2.View(func(tx *store.Tx) error {
		return store.Each(tx, store.BucketUsers, "", func(_ string, r rec) error {
			if seen[r.N] {
				return fmt.Errorf("record %d stored twice", r.N)
			}
			seen[r.N] = true
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("after reopen: %d records, want %d", len(seen), writers*each)
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	s := openAt(t, path)
	put := func(key string, n int) {
		t.Helper()
		if err := s.Update(func(tx *store.Tx) error { return store.Put(tx, store.BucketUsers, key, rec{N: n}) }); err != nil {
			t.Fatal(err)
		}
	}
	put("before", 1)
	backup := filepath.Join(dir, "backup.db")
	info, err := s.BackupTo(backup)
	if err != nil {
		t.Fatalf("BackupTo: %v", err)
	}
	if info.Buckets[store.BucketUsers] != 1 {
		t.Fatalf("backup users = %d, want 1", info.Buckets[store.BucketUsers])
	}
	put("after", 2)
	s.Close()

	if _, err := store.Restore(backup, path, time.Unix(0, 0)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	kept, _ := filepath.Glob(path + ".before-restore-*")
	if len(kept) != 1 {
		t.Fatalf("kept copies = %v, want one", kept)
	}
	s2 := openAt(t, path)
	_ = s2.View(func(tx *store.Tx) error {
		if _, ok, _ := store.Get[rec](tx, store.BucketUsers, "after"); ok {
			t.Error("record written after the backup survived the restore")
		}
		if _, ok, _ := store.Get[rec](tx, store.BucketUsers, "before"); !ok {
			t.Error("record from the backup is missing after restore")
		}
		return nil
	})
}

func TestRestoreRefusesBadSnapshotAndKeepsCurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	s := openAt(t, path)
	_ = s.Update(func(tx *store.Tx) error { return store.Put(tx, store.BucketUsers, "k", rec{N: 7}) })
	s.Close()
	before, _ := os.ReadFile(path)

	bad := filepath.Join(dir, "bad.db")
	os.WriteFile(bad, make([]byte, 8192), 0o600)
	truncated := filepath.Join(dir, "trunc.db")
	os.WriteFile(truncated, before[:len(before)/3], 0o600)
	for _, src := range []string{bad, truncated, filepath.Join(dir, "missing.db")} {
		if _, err := store.Restore(src, path, time.Now()); err == nil {
			t.Errorf("Restore(%s) = nil error, want refusal", filepath.Base(src))
		}
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("a refused restore changed the current database")
	}
}

func TestRestoreWhileOpenRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	s := openAt(t, path)
	backup := filepath.Join(dir, "b.db")
	if _, err := s.BackupTo(backup); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Restore(backup, path, time.Now()); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Restore over an open database error = %v, want ErrLocked", err)
	}
}
