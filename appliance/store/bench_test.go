package store_test

// Backup benchmark on a ~100 MiB database. It runs only with -bench (`make
// bench` runs it); filling the store takes a few seconds and happens once.

import (
	"path/filepath"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

const (
	benchDBBytes    = 100 << 20 // database size to fill to
	benchRecord     = 1 << 10   // bytes per record
	benchBatch      = 4000      // records per Update
	benchMaxBatches = 200       // bound on the fill, whatever the page layout
)

// fillStore writes 1 KiB records in batches until the database holds at
// least want bytes, and returns its size.
func fillStore(b *testing.B, s *store.Store, want int64) int64 {
	b.Helper()
	val := make([]byte, benchRecord)
	for i := range val {
		val[i] = byte(i*7 + i>>8) // not all zeros, in case a layer compresses
	}
	n := uint64(0)
	for batch := 0; s.Size() < want; batch++ {
		if batch == benchMaxBatches {
			b.Fatalf("store is %d bytes after %d batches of %d records, want %d", s.Size(), batch, benchBatch, want)
		}
		first := n
		err := s.Update(func(tx *store.Tx) error {
			n = first // Update may run fn again
			for range benchBatch {
				n++
				if err := tx.PutRaw(store.BucketSessions, "bench-"+store.SeqKey(n), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("fill store: %v", err)
		}
	}
	return s.Size()
}

// BenchmarkBackup100MB fills a real store to ~100 MiB once, then measures a
// consistent online snapshot written atomically to a file (BackupTo: write,
// fsync, rename, then a full read-back verification) and, separately, the
// verification alone. MB/s is over the database size.
func BenchmarkBackup100MB(b *testing.B) {
	s := storetest.Open(b)
	size := fillStore(b, s, benchDBBytes)
	dst := filepath.Join(b.TempDir(), "backup.db")

	b.Run("BackupTo", func(b *testing.B) {
		b.SetBytes(size)
		var info store.Info
		for b.Loop() {
			var err error
			if info, err = s.BackupTo(dst); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(info.Size)/1e6, "MB_db")
		if keys := info.Buckets[store.BucketSessions]; keys == 0 {
			b.Fatalf("BackupTo(%s) = %d session keys, want the filled records", dst, keys)
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := store.Verify(dst); err != nil {
				b.Fatalf("Verify(%s) = %v", dst, err)
			}
		}
	})
}
