package store_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
)

// tmpfs mounts a small tmpfs for the test (root only) and unmounts it after.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (make test runs as root in CI)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "hearth-test", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func TestDiskFull(t *testing.T) {
	dir := tmpfs(t, "2m")
	path := filepath.Join(dir, store.FileName)
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A ballast file takes the space a user would free later.
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", 4000)
	acked := 0
	var fullErr error
	for i := range 2000 {
		err := s.Update(func(tx *store.Tx) error { return tx.PutRaw(store.BucketUsers, fmt.Sprintf("k%05d", i), []byte(value)) })
		if err != nil {
			fullErr = err
			break
		}
		acked++
	}
	if !errors.Is(fullErr, store.ErrNoSpace) {
		t.Fatalf("writing past a full disk: %v, want ErrNoSpace", fullErr)
	}
	// Reads keep working and every acknowledged write is there.
	check := func(s *store.Store, want int) {
		t.Helper()
		err := s.View(func(tx *store.Tx) error {
			for i := range want {
				v, err := tx.GetRaw(store.BucketUsers, fmt.Sprintf("k%05d", i))
				if err != nil || string(v) != value {
					return fmt.Errorf("record %d after disk full: %q, %v", i, v, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(s, acked)
	// Freeing space lets writes succeed again.
	os.Remove(ballast)
	if err := s.Update(func(tx *store.Tx) error { return tx.PutRaw(store.BucketUsers, "after", []byte("ok")) }); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	s.Close()
	if _, err := store.Verify(path); err != nil {
		t.Fatalf("database after a full disk: %v", err)
	}
	s2, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	check(s2, acked)
	t.Logf("%d writes acknowledged before the disk filled", acked)
}
