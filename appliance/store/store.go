package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the database file inside the data directory.
const FileName = "hearth.db"

// DefaultOpenTimeout bounds how long Open waits for another process's lock.
const DefaultOpenTimeout = 2 * time.Second

// Sentinel errors. Use errors.Is to test for them.
var (
	// ErrLocked means another process holds the database file open.
	ErrLocked = errors.New("database is in use by another process (is hearth serve running?)")
	// ErrNewerSchema means the file was written by a newer Hearth.
	ErrNewerSchema = errors.New("database was written by a newer version of hearth")
	// ErrCorrupt means the file is not a readable Hearth database.
	ErrCorrupt = errors.New("database file is damaged or not a hearth database")
	// ErrNoSpace means a write failed because the disk is full.
	ErrNoSpace = errors.New("no space left on the data disk")
	// ErrNotFound is returned by lookups that require a record to exist.
	ErrNotFound = errors.New("record not found")
	// ErrClosed is returned by Update once the store is closed.
	ErrClosed = errors.New("database is closed")
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Timeout bounds the wait for the file lock; zero means DefaultOpenTimeout.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and applies no migrations.
	ReadOnly bool
	// MaxBatch bounds how many Update calls share one commit; zero means
	// DefaultMaxBatch.
	MaxBatch int
}

// Store is an open database. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	w    *committer // nil when read-only
}

// Open opens (creating if needed) the database at path and brings its schema
// up to date. A file held by another process fails with ErrLocked after the
// timeout; a file from a newer Hearth fails with ErrNewerSchema.
func Open(path string, opts Options) (*Store, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultOpenTimeout
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := preflight(path); err != nil && !errors.Is(err, os.ErrNotExist) && !isEmpty(path) {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, classify(err))
	}
	s := &Store{db: db, path: path}
	if opts.ReadOnly {
		_, err = s.SchemaVersion()
		if err == nil {
			err = s.checkSchema()
		}
	} else {
		err = s.migrate()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if !opts.ReadOnly {
		s.w = newCommitter(db, opts.MaxBatch)
	}
	return s, nil
}

func isEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() == 0
}

// classify maps bbolt and system errors to this package's sentinels, keeping
// the original in the chain.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrTimeout):
		return ErrLocked
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	if s.w != nil {
		s.w.close() // the queued writes commit first
	}
	return s.db.Close()
}

// Update runs fn in a read-write transaction that is committed together
// with the calls queued while the previous commit was being written (a
// group commit, by the store's one writer goroutine). It returns only after
// the commit is on disk. Calls share a transaction in the order they were
// queued. fn may run more than once if a transaction it shares fails, so it
// must not have effects outside tx.
func (s *Store) Update(fn func(tx *Tx) error) error {
	wrapped := func(btx *bolt.Tx) error { return fn(&Tx{btx: btx}) }
	if s.w == nil {
		return classify(s.db.Update(wrapped))
	}
	return classify(s.w.update(wrapped))
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	return classify(s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{btx: btx}) }))
}

// Ping checks that the database answers a read. It is the liveness check
// behind the systemd watchdog and /readyz.
func (s *Store) Ping() error {
	return s.View(func(tx *Tx) error {
		if tx.btx.Bucket([]byte(BucketMeta)) == nil {
			return fmt.Errorf("%w: meta bucket missing", ErrCorrupt)
		}
		return nil
	})
}

// Size returns the size of the database file in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Backup writes a consistent snapshot of the whole database to w while
// readers and writers carry on.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("write snapshot: %w", classify(err))
	}
	return n, nil
}

// Tx is a transaction handed to Update and View callbacks.
type Tx struct {
	btx *bolt.Tx
}

func (tx *Tx) bucket(name string) (*bolt.Bucket, error) {
	b := tx.btx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("bucket %q does not exist", name)
	}
	return b, nil
}

// GetRaw returns a copy of the value at key, or nil when absent.
func (tx *Tx) GetRaw(bucket, key string) ([]byte, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return nil, err
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// PutRaw stores value at key.
func (tx *Tx) PutRaw(bucket, key string, value []byte) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), value)
}

// Delete removes key; a missing key is not an error.
func (tx *Tx) Delete(bucket, key string) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete([]byte(key))
}

// NextSeq returns the bucket's next sequence number (1, 2, …).
func (tx *Tx) NextSeq(bucket string) (uint64, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}

// EachRaw calls fn for every key with the given prefix, in key order, until
// fn returns a non-nil error. ErrStop ends the walk without an error.
func (tx *Tx) EachRaw(bucket, prefix string, fn func(key string, value []byte) error) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Count returns the number of keys in a bucket.
func (tx *Tx) Count(bucket string) (int, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return 0, err
	}
	return b.Stats().KeyN, nil
}

// ErrStop ends an Each walk early without reporting an error.
var ErrStop = errors.New("stop")

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}

// Get decodes the record at key into a T. ok is false when there is none.
func Get[T any](tx *Tx, bucket, key string) (v T, ok bool, err error) {
	raw, err := tx.GetRaw(bucket, key)
	if err != nil || raw == nil {
		return v, false, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return v, true, nil
}

// Put encodes v and stores it at key.
func Put[T any](tx *Tx, bucket, key string, v T) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.PutRaw(bucket, key, raw)
}

// Each decodes every record whose key has prefix and calls fn with it.
func Each[T any](tx *Tx, bucket, prefix string, fn func(key string, v T) error) error {
	return tx.EachRaw(bucket, prefix, func(k string, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		return fn(k, v)
	})
}

// SeqKey formats a sequence number as a key that sorts in numeric order.
func SeqKey(n uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return fmt.Sprintf("%x", b)
}

// Last returns the last key (and a copy of its value) with the given
// prefix, or "" when there is none.
func (tx *Tx) Last(bucket, prefix string) (string, []byte, error) {
	var key string
	var val []byte
	err := tx.EachReverse(bucket, prefix, "", func(k string, v []byte) error {
		key, val = k, append([]byte(nil), v...)
		return ErrStop
	})
	return key, val, err
}

// EachReverse is EachRaw from the last key with prefix backwards, starting
// at keys below before (when before is not "").
func (tx *Tx) EachReverse(bucket, prefix, before string, fn func(key string, value []byte) error) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	p := []byte(prefix)
	// Keys are printable, so prefix+0xff sorts after every key with prefix.
	start := append(append([]byte(nil), p...), 0xff)
	if before != "" {
		start = []byte(before)
	}
	var k, v []byte
	if k, _ = c.Seek(start); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && hasPrefix(k, p); k, v = c.Prev() {
		if err := fn(string(k), v); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// EachFrom walks keys with prefix in order starting at from (inclusive).
func (tx *Tx) EachFrom(bucket, prefix, from string, fn func(key string, value []byte) error) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	p := []byte(prefix)
	start := p
	if from > prefix {
		start = []byte(from)
	}
	for k, v := c.Seek(start); k != nil && hasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}
