package certs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// KV is the key-value store certificates, keys, the ACME account and locks
// are kept in. Keys are slash-separated paths such as
// "certificates/hearth-local/hearth.local/hearth.local.crt"; values are
// opaque bytes of at most a few kilobytes. Implementations must be safe for
// concurrent use, and a Put must be durable when it returns.
type KV interface {
	// Get returns the value stored at key. A missing key returns nil, nil
	// (an error wrapping fs.ErrNotExist is accepted too).
	Get(key string) ([]byte, error)
	// Put stores value at key, replacing any value there.
	Put(key string, value []byte) error
	// Delete removes key. A missing key is not an error.
	Delete(key string) error
	// List returns every key that begins with prefix (a plain string
	// prefix), in any order.
	List(prefix string) ([]string, error)
}

// DefaultLockTTL is how long a lock outlives its holder: a process that dies
// holding a lock blocks others for at most this long (or for the rest of a
// lease certmagic asked for with RenewLockLease, while it waits between
// retries of a failing ACME order).
const DefaultLockTTL = 10 * time.Second

// lockPrefix is where lock records live in the key space.
const lockPrefix = "locks/"

// StorageConfig configures a Storage.
type StorageConfig struct {
	KV KV // required
	// LockTTL is how long a lock record stays valid without being
	// refreshed; a holder refreshes it when half of that is left. Zero means
	// DefaultLockTTL.
	LockTTL time.Duration
	Logger  *slog.Logger // nil: discard
}

// Storage is certmagic's Storage on a KV. Each value is stored with its
// modification time (see encodeRecord). Locks are records under "locks/"
// holding their owner and an expiry that the holder pushes forward while it
// works (or that a lease from RenewLockLease sets); a record left behind by
// a holder that died expires after LockTTL (or its lease). Within one
// Storage a lock is also exclusive in memory, so goroutines of one process
// never race for it.
//
// Storage is safe for concurrent use. Close stops its lock refreshers and
// releases the locks it still holds.
type Storage struct {
	kv   KV
	ttl  time.Duration
	poll time.Duration
	id   string
	log  *slog.Logger

	mu     sync.Mutex
	held   map[string]*heldLock
	closed bool
}

type heldLock struct {
	released chan struct{} // closed when the lock is given up
	done     chan struct{} // closed when the refresher has exited
	bump     chan struct{} // the expiry moved: the refresher re-arms
	expires  time.Time     // of the stored record; guarded by Storage.mu
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// NewStorage returns a Storage on cfg.KV.
func NewStorage(cfg StorageConfig) (*Storage, error) {
	if cfg.KV == nil {
		return nil, errors.New("certs: storage needs a KV")
	}
	if cfg.LockTTL < 0 {
		return nil, fmt.Errorf("certs: lock TTL %s is negative", cfg.LockTTL)
	}
	s := &Storage{kv: cfg.KV, ttl: cfg.LockTTL, log: cfg.Logger, held: map[string]*heldLock{}}
	if s.ttl == 0 {
		s.ttl = DefaultLockTTL
	}
	s.poll = max(s.ttl/5, time.Millisecond)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	rand.Read(id[:])
	s.id = hex.EncodeToString(id[:])
	return s, nil
}

// Record format: a version byte, the modification time as big-endian Unix
// nanoseconds, then the value.
const (
	recordVersion = 1
	recordHeader  = 9
)

func encodeRecord(value []byte, modified time.Time) []byte {
	b := make([]byte, recordHeader+len(value))
	b[0] = recordVersion
	binary.BigEndian.PutUint64(b[1:recordHeader], uint64(modified.UnixNano()))
	copy(b[recordHeader:], value)
	return b
}

// decodeRecord splits a stored record into its value and modification time.
func decodeRecord(b []byte) (value []byte, modified time.Time, err error) {
	if len(b) < recordHeader {
		return nil, time.Time{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrCorruptRecord, len(b), recordHeader)
	}
	if b[0] != recordVersion {
		return nil, time.Time{}, fmt.Errorf("%w: format version %d, want %d", ErrCorruptRecord, b[0], recordVersion)
	}
	ns := int64(binary.BigEndian.Uint64(b[1:recordHeader]))
	return b[recordHeader:], time.Unix(0, ns), nil
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("certs: invalid storage key %q", key)
	}
	return nil
}

// get reads and decodes the record at key; a missing key is fs.ErrNotExist.
func (s *Storage) get(key string) ([]byte, time.Time, error) {
	raw, err := s.kv.Get(key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read %s: %w", key, err)
	}
	if raw == nil {
		return nil, time.Time{}, fmt.Errorf("read %s: %w", key, fs.ErrNotExist)
	}
	v, mod, err := decodeRecord(raw)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read %s: %w", key, err)
	}
	return v, mod, nil
}

func (s *Storage) put(key string, value []byte) error {
	if err := s.kv.Put(key, encodeRecord(value, time.Now())); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return s.put(key, value)
}

// Load returns the value at key; a missing key is an error wrapping
// fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, _, err := s.get(key)
	return v, err
}

// Delete removes key and, if it is a directory, every key below it. A
// missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	below, err := s.kv.List(key + "/")
	if err != nil {
		return fmt.Errorf("list %s: %w", key, err)
	}
	for _, k := range append(below, key) {
		if err := s.kv.Delete(k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return nil
}

// Exists reports whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys below path: with recursive, every file and
// directory at any depth; without, only its direct children. A path with
// nothing below it is an error wrapping fs.ErrNotExist.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := ""
	if path != "" {
		prefix = strings.TrimSuffix(path, "/") + "/"
	}
	keys, err := s.kv.List(prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", path, err)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		rel, ok := strings.CutPrefix(k, prefix)
		if !ok || rel == "" {
			continue
		}
		if !recursive {
			first, _, _ := strings.Cut(rel, "/")
			seen[prefix+first] = true
			continue
		}
		for i := range len(rel) {
			if rel[i] == '/' {
				seen[prefix+rel[:i]] = true
			}
		}
		seen[k] = true
	}
	if len(seen) == 0 {
		if _, _, err := s.get(strings.TrimSuffix(prefix, "/")); err == nil {
			return []string{}, nil // a file has nothing below it
		}
		return nil, fmt.Errorf("list %s: %w", path, fs.ErrNotExist)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// Stat describes key: a file (with its size and modification time) or a
// directory. A missing key is an error wrapping fs.ErrNotExist.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return certmagic.KeyInfo{}, err
	}
	if err := checkKey(key); err != nil {
		return certmagic.KeyInfo{}, err
	}
	v, mod, err := s.get(key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: mod, Size: int64(len(v)), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	below, lerr := s.kv.List(key + "/")
	if lerr != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("list %s: %w", key, lerr)
	}
	if len(below) == 0 {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "hearth-kv" }

// Close stops refreshing the locks this Storage holds and releases them. It
// is safe to call more than once.
func (s *Storage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	names := make([]string, 0, len(s.held))
	for name := range s.held {
		names = append(names, name)
	}
	s.mu.Unlock()
	var errs []error
	for _, name := range names {
		if err := s.unlock(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
