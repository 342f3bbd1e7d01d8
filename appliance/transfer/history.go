package transfer

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hearth-home/hearth/appliance/store"
)

// Directions of a history record.
const (
	DirectionSent     = "sent"
	DirectionReceived = "received"
)

// History limits.
const (
	MaxHistory  = 500 // records kept per user; older ones are dropped
	listedFiles = 20  // files named in a record; FileCount has them all
)

// Record is one transfer in a member's history (PROTOCOL.md section 6).
type Record struct {
	ID         string    `json:"id"`
	Direction  string    `json:"direction"` // sent or received
	Peer       string    `json:"peer"`      // the other party's name ("guest" for a guest)
	PeerDevice string    `json:"peer_device,omitempty"`
	Files      []File    `json:"files"`      // the first files of the offer
	FileCount  int       `json:"file_count"` // files in the offer
	Total      int64     `json:"total"`      // bytes in the offer
	Bytes      int64     `json:"bytes"`      // bytes moved, as the party reported
	Done       int       `json:"files_done"` // files that arrived, as the party reported
	Result     string    `json:"result"`     // done, failed, cancelled, declined or expired
	Time       time.Time `json:"time"`
}

// historyWrite is a record to store for a user: a party's own report
// (overwrite), the server's note of how a transfer ended (kept only when
// the party reported nothing), or a late report on a forgotten transfer
// (update).
type historyWrite struct {
	user      string
	rec       Record
	overwrite bool
	update    bool
}

func historyKey(user, id, dir string) string { return user + "/" + id + "/" + dir }

func (t *transfer) record(dir string, peer *Party, now time.Time, result string) Record {
	r := Record{ID: t.id, Direction: dir, Peer: t.peerName, Files: t.files[:min(len(t.files), listedFiles)],
		FileCount: len(t.files), Total: t.total, Result: result, Time: now.UTC()}
	if peer != nil {
		r.Peer, r.PeerDevice = peer.Name, peer.Device
	}
	return r
}

// records are the server's notes for every member concerned when t ends
// with result; peer, when set, is who ended it (a decliner).
func (t *transfer) records(now time.Time, result string, peer *Party) []historyWrite {
	sp := t.receiver
	if sp == nil {
		sp = peer
	}
	out := []historyWrite{{user: t.sender.UserID, rec: t.record(DirectionSent, sp, now, result)}}
	if t.receiver != nil && !strings.HasPrefix(t.receiver.UserID, GuestPrefix) {
		out = append(out, historyWrite{user: t.receiver.UserID, rec: t.record(DirectionReceived, &t.sender, now, result)})
	}
	if result == ResultDeclined {
		for sid := range t.declined {
			if p := t.notified[sid]; !strings.HasPrefix(p.UserID, GuestPrefix) {
				out = append(out, historyWrite{user: p.UserID, rec: t.record(DirectionReceived, &t.sender, now, result)})
			}
		}
	}
	return out
}

// record stores h. An update finds nothing to update → ErrNotFound.
func (s *Service) record(h historyWrite) error {
	if s.cfg.Store == nil {
		if h.update {
			return fmt.Errorf("%w: %s", ErrNotFound, h.rec.ID)
		}
		return nil
	}
	found := false
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		if h.update {
			found = false
			var keys []string
			var recs []Record
			err := store.Each(tx, store.BucketTransfers, h.user+"/"+h.rec.ID+"/", func(k string, r Record) error {
				keys, recs = append(keys, k), append(recs, r)
				return nil
			})
			if err != nil {
				return err
			}
			for i, r := range recs {
				found = true
				r.Result, r.Bytes, r.Done = h.rec.Result, h.rec.Bytes, h.rec.Done
				if err := store.Put(tx, store.BucketTransfers, keys[i], r); err != nil {
					return err
				}
			}
			return nil
		}
		key := historyKey(h.user, h.rec.ID, h.rec.Direction)
		if !h.overwrite {
			if raw, err := tx.GetRaw(store.BucketTransfers, key); err != nil || raw != nil {
				return err // the party's own report stands
			}
		}
		if err := store.Put(tx, store.BucketTransfers, key, h.rec); err != nil {
			return err
		}
		return prune(tx, h.user)
	})
	if err != nil {
		return fmt.Errorf("record transfer history: %w", err)
	}
	if h.update && !found {
		return fmt.Errorf("%w: %s", ErrNotFound, h.rec.ID)
	}
	return nil
}

// prune keeps a user's newest MaxHistory records.
func prune(tx *store.Tx, user string) error {
	type entry struct {
		key  string
		time time.Time
	}
	var all []entry
	err := store.Each(tx, store.BucketTransfers, user+"/", func(k string, r Record) error {
		all = append(all, entry{k, r.Time})
		return nil
	})
	if err != nil || len(all) <= MaxHistory {
		return err
	}
	slices.SortFunc(all, func(a, b entry) int { return a.time.Compare(b.time) })
	for _, e := range all[:len(all)-MaxHistory] {
		if err := tx.Delete(store.BucketTransfers, e.key); err != nil {
			return err
		}
	}
	return nil
}

// History returns a user's transfers, newest first.
func (s *Service) History(userID string) ([]Record, error) {
	out := []Record{}
	if s.cfg.Store == nil {
		return out, nil
	}
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		return tx.EachRaw(store.BucketTransfers, userID+"/", func(_ string, raw []byte) error {
			var r Record
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil // a damaged record is skipped, not fatal
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read transfer history: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Record) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ClearHistory deletes a user's history and returns how many records
// went.
func (s *Service) ClearHistory(userID string) (int, error) {
	if s.cfg.Store == nil {
		return 0, nil
	}
	n := 0
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		var keys []string
		err := tx.EachRaw(store.BucketTransfers, userID+"/", func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		})
		if err != nil {
			return err
		}
		n = len(keys)
		for _, k := range keys {
			if err := tx.Delete(store.BucketTransfers, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("clear transfer history: %w", err)
	}
	return n, nil
}
