package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheckHeader feeds arbitrary file heads to the meta-page check that
// guards bbolt against damaged files: it must never panic, and whatever it
// accepts must name only pages the file holds.
func FuzzCheckHeader(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(filepath.Join(dir, FileName), Options{})
	if err != nil {
		f.Fatal(err)
	}
	s.Close()
	good, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:4096])
	f.Add(good[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkHeader(bytes.NewReader(b), int64(len(b)))
		if err == nil {
			m, ok := parseMeta(b)
			if ok && int64(m.pgid)*int64(m.pageSize) > int64(len(b)) {
				t.Fatalf("accepted a header naming %d pages of %d bytes in a %d-byte file", m.pgid, m.pageSize, len(b))
			}
		}
	})
}
