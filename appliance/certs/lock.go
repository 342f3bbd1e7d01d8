package certs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// lockRecord is what a lock key holds: who holds it and until when, unless
// refreshed.
type lockRecord struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

func lockKey(name string) string { return lockPrefix + name + ".lock" }

// readLock returns the lock record for name; ok is false when there is none
// or it is unreadable (an unreadable record is treated as expired, so that a
// damaged record cannot block issuance forever).
func (s *Storage) readLock(name string) (rec lockRecord, ok bool, err error) {
	v, _, err := s.get(lockKey(name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return rec, false, nil
	case errors.Is(err, ErrCorruptRecord):
		s.log.Warn("damaged lock record; treating it as expired", "lock", name, "err", err)
		return rec, false, nil
	case err != nil:
		return rec, false, err
	}
	if err := json.Unmarshal(v, &rec); err != nil || rec.Owner == "" {
		s.log.Warn("damaged lock record; treating it as expired", "lock", name)
		return lockRecord{}, false, nil
	}
	return rec, true, nil
}

func (s *Storage) writeLock(name string, expires time.Time) error {
	v, err := json.Marshal(lockRecord{Owner: s.id, Expires: expires})
	if err != nil {
		return err
	}
	return s.put(lockKey(name), v)
}

// Lock acquires the named lock, waiting while another goroutine of this
// process or an unexpired record of another holder has it, until ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lock %s: %w", name, err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return fmt.Errorf("lock %s: storage is closed", name)
		}
		if h := s.held[name]; h != nil {
			s.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-h.released:
			}
			continue
		}
		rec, exists, err := s.readLock(name)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("lock %s: %w", name, err)
		}
		now := time.Now()
		if !exists || !now.Before(rec.Expires) {
			if exists {
				s.log.Warn("taking over an expired lock; its holder stopped without releasing it", "lock", name, "expired", rec.Expires)
			}
			expires := now.Add(s.ttl)
			if err := s.writeLock(name, expires); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("lock %s: %w", name, err)
			}
			h := &heldLock{released: make(chan struct{}), done: make(chan struct{}), bump: make(chan struct{}, 1), expires: expires}
			s.held[name] = h
			s.mu.Unlock()
			go s.refresh(name, h)
			return nil
		}
		s.mu.Unlock()
		wait := min(rec.Expires.Sub(now)+time.Millisecond, s.poll)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// refresh pushes the lock's expiry forward while it is held, half a TTL
// before it runs out, so a lock costs no writes while a lease granted by
// RenewLockLease covers it. If another holder has taken the record over
// (this process stalled past the expiry), it stops and says so.
func (s *Storage) refresh(name string, h *heldLock) {
	defer close(h.done)
	for {
		s.mu.Lock()
		if s.held[name] != h {
			s.mu.Unlock()
			return
		}
		wait := time.Until(h.expires) - s.ttl/2
		s.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-h.released:
				t.Stop()
				return
			case <-h.bump:
				t.Stop()
				continue
			case <-t.C:
			}
		}
		s.mu.Lock()
		if s.held[name] != h {
			s.mu.Unlock()
			return
		}
		rec, exists, err := s.readLock(name)
		if err == nil && exists && rec.Owner != s.id {
			s.mu.Unlock()
			s.log.Error("lost a lock to another holder after failing to refresh it in time", "lock", name)
			return
		}
		if err == nil {
			expires := time.Now().Add(s.ttl)
			if err = s.writeLock(name, expires); err == nil {
				h.expires = expires
			}
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("refresh lock", "lock", name, "err", err)
			t := time.NewTimer(s.poll)
			select {
			case <-h.released:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// RenewLockLease keeps a held lock valid for at least lease from now,
// without refreshes (certmagic calls it before each retry of an obtain,
// with the time until the next one). It implements
// certmagic.LockLeaseRenewer.
func (s *Storage) RenewLockLease(_ context.Context, name string, lease time.Duration) error {
	s.mu.Lock()
	h := s.held[name]
	if h == nil {
		s.mu.Unlock()
		return fmt.Errorf("renew lock %s: not locked by this process", name)
	}
	expires := time.Now().Add(max(lease, s.ttl))
	var err error
	if expires.After(h.expires) {
		if err = s.writeLock(name, expires); err == nil {
			h.expires = expires
		}
	}
	s.mu.Unlock()
	select {
	case h.bump <- struct{}{}:
	default:
	}
	if err != nil {
		return fmt.Errorf("renew lock %s: %w", name, err)
	}
	return nil
}

// Unlock releases a lock acquired with Lock.
func (s *Storage) Unlock(_ context.Context, name string) error {
	return s.unlock(name)
}

func (s *Storage) unlock(name string) error {
	s.mu.Lock()
	h := s.held[name]
	if h == nil {
		s.mu.Unlock()
		return fmt.Errorf("unlock %s: not locked by this process", name)
	}
	delete(s.held, name)
	close(h.released)
	rec, exists, err := s.readLock(name)
	if err == nil && exists && rec.Owner == s.id {
		if derr := s.kv.Delete(lockKey(name)); derr != nil {
			err = derr
		}
	}
	s.mu.Unlock()
	<-h.done
	if err != nil {
		return fmt.Errorf("unlock %s: %w", name, err)
	}
	return nil
}
