package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt maps the whole file into memory and trusts its meta pages, so a
// truncated file can crash the reader. preflight checks, before bbolt sees
// the file, that a valid meta page exists and the file holds every page it
// names.

const (
	boltMagic      = 0xED0CDAED
	pageHeaderSize = 16
	metaSize       = 64 // magic … checksum
	minPageSize    = 512
	maxPageSize    = 1 << 16
)

type metaPage struct {
	pageSize uint32
	pgid     uint64
	txid     uint64
}

func parseMeta(b []byte) (metaPage, bool) {
	if len(b) < pageHeaderSize+metaSize {
		return metaPage{}, false
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return metaPage{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return metaPage{}, false
	}
	mp := metaPage{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if mp.pageSize < minPageSize || mp.pageSize > maxPageSize || mp.pageSize&(mp.pageSize-1) != 0 {
		return metaPage{}, false
	}
	return mp, true
}

// checkHeader validates the meta pages read from r (of the given size).
func checkHeader(r io.ReaderAt, size int64) error {
	first := make([]byte, pageHeaderSize+metaSize)
	if _, err := r.ReadAt(first, 0); err != nil {
		return fmt.Errorf("%w: too short for a database", ErrCorrupt)
	}
	best, ok := parseMeta(first)
	if ps := int64(best.pageSize); ok || ps == 0 {
		if ps == 0 {
			ps = 4096 // the first meta is bad; look for the second at the usual size
		}
		second := make([]byte, pageHeaderSize+metaSize)
		if _, err := r.ReadAt(second, ps); err == nil {
			if m2, ok2 := parseMeta(second); ok2 && (!ok || m2.txid > best.txid) {
				best, ok = m2, true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: no valid meta page", ErrCorrupt)
	}
	need := int64(best.pgid) * int64(best.pageSize)
	if best.pgid > 1<<40 || size < need {
		return fmt.Errorf("%w: file is %d bytes but its pages need %d (truncated copy?)", ErrCorrupt, size, need)
	}
	return nil
}

func preflight(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return checkHeader(f, st.Size())
}
