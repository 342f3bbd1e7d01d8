package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
)

// testdata/schema-v1.db was written by the first schema (accounts only):
// opening it must migrate it to the current schema and keep its records.
func TestMigrateFromSchemaV1(t *testing.T) {
	raw, err := os.ReadFile("testdata/schema-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), store.FileName)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err := store.Verify(path); err != nil || info.SchemaVersion != 1 {
		t.Fatalf("fixture: %+v, %v; want a schema 1 file", info, err)
	}
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("open schema 1 file: %v", err)
	}
	if v, _ := s.SchemaVersion(); v != store.SchemaVersionSupported() {
		t.Fatalf("after migration schema = %d, want %d", v, store.SchemaVersionSupported())
	}
	err = s.View(func(tx *store.Tx) error {
		id, err := tx.GetRaw(store.BucketNames, "mum")
		if err != nil || string(id) != "u1" {
			t.Errorf("user name index after migration = %q, %v", id, err)
		}
		for _, b := range []string{store.BucketChannels, store.BucketMessages, store.BucketEvents, store.BucketCerts, store.BucketTransfers} {
			if _, err := tx.Count(b); err != nil {
				t.Errorf("bucket %s missing after migration: %v", b, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if info, err := store.Verify(path); err != nil || info.SchemaVersion != store.SchemaVersionSupported() {
		t.Fatalf("migrated file: %+v, %v", info, err)
	}
	// Opening again is a no-op.
	s2, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}
