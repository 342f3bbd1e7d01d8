package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store"
)

// storedEvent is a realtime event as kept in the events bucket.
type storedEvent struct {
	ID      uint64          `json:"id"`
	Type    string          `json:"type"`
	Channel string          `json:"channel,omitempty"`
	Users   []string        `json:"users,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"` // written last, see add
	At      time.Time       `json:"at"`
}

// events collects the events of one transaction.
type events struct {
	list []hub.Event
}

// add stores an event in tx and queues it for publishing after commit.
// The audience is the readers of channel, or users when given.
func (e *events) add(tx *store.Tx, now time.Time, typ, channel string, users []string, data any) error {
	id, err := tx.NextSeq(store.BucketEvents)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	// The record is storedEvent's JSON; its data, encoded just above, is
	// appended as is rather than re-encoded (and re-checked) by Marshal.
	head, err := json.Marshal(storedEvent{ID: id, Type: typ, Channel: channel, Users: users, At: now.UTC()})
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	head = head[:len(head)-1] // without its closing brace
	rec := make([]byte, 0, len(head)+len(raw)+10)
	rec = append(append(append(append(rec, head...), `,"data":`...), raw...), '}')
	if err := tx.PutRaw(store.BucketEvents, store.SeqKey(id), rec); err != nil {
		return err
	}
	e.list = append(e.list, hub.Event{ID: id, Type: typ, Channel: channel, Users: users, Data: json.RawMessage(raw)})
	return nil
}

// LastEventID returns the newest stored event's ID (0 when none).
func (s *Service) LastEventID() uint64 {
	var id uint64
	_ = s.st.View(func(tx *store.Tx) error {
		k, _, err := tx.Last(store.BucketEvents, "")
		if err == nil && k != "" {
			id, _ = strconv.ParseUint(k, 16, 64)
		}
		return err
	})
	return id
}

// Replay sends userID the stored events with since < ID <= upto that the
// user may see now, in order. It is the hub's Replay hook.
func (s *Service) Replay(ctx context.Context, userID string, since, upto uint64, emit func(hub.Event) error) error {
	if upto-since > hub.MaxReplay {
		return hub.ErrTooFarBehind
	}
	var batch []storedEvent
	err := s.st.View(func(tx *store.Tx) error {
		first := true
		return tx.EachFrom(store.BucketEvents, "", store.SeqKey(since+1), func(_ string, raw []byte) error {
			var se storedEvent
			if err := json.Unmarshal(raw, &se); err != nil {
				return err
			}
			if first && se.ID != since+1 {
				return hub.ErrTooFarBehind // pruned: the client must reload
			}
			first = false
			if se.ID > upto {
				return store.ErrStop
			}
			batch = append(batch, se)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, se := range batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		ev := hub.Event{ID: se.ID, Type: se.Type, Channel: se.Channel, Users: se.Users, Data: se.Data}
		if !s.inAudience(userID, ev) {
			continue
		}
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) inAudience(userID string, ev hub.Event) bool {
	if len(ev.Users) > 0 {
		for _, u := range ev.Users {
			if u == userID {
				return true
			}
		}
		return false
	}
	if ev.Channel != "" {
		return s.CanRead(userID, ev.Channel)
	}
	return true
}

// pruneEvents drops events older than eventKeep; clients further behind
// reload instead of replaying.
func (s *Service) pruneEvents(tx *store.Tx, now time.Time) (int, error) {
	var dead []string
	err := tx.EachRaw(store.BucketEvents, "", func(k string, raw []byte) error {
		var se storedEvent
		if err := json.Unmarshal(raw, &se); err != nil {
			return err
		}
		if now.Sub(se.At) < eventKeep {
			return store.ErrStop
		}
		dead = append(dead, k)
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Keep the newest event so IDs keep growing from it.
	if n, _ := tx.Count(store.BucketEvents); len(dead) >= n && len(dead) > 0 {
		dead = dead[:len(dead)-1]
	}
	for _, k := range dead {
		if err := tx.Delete(store.BucketEvents, k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
