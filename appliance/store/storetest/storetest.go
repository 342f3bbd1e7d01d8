// Package storetest opens real stores in test temp directories.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
)

// Open returns a migrated store in a fresh temp directory, closed when the
// test ends.
func Open(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.Open(filepath.Join(tb.TempDir(), store.FileName), store.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
