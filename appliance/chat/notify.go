package chat

import (
	"encoding/json"
	"regexp"
	"time"

	"github.com/hearth-home/hearth/appliance/store"
)

// Notification kinds.
const (
	NotifyMention = "mention"
	NotifyDM      = "dm"
)

// Notification tells a user about a mention or a direct message.
type Notification struct {
	ID      uint64    `json:"id"`
	Kind    string    `json:"kind"`
	Channel string    `json:"channel"`
	MsgSeq  uint64    `json:"seq"`
	Author  string    `json:"author"`
	Text    string    `json:"text"`
	Created time.Time `json:"created"`
	Read    bool      `json:"read"`
}

var mentionRE = regexp.MustCompile(`(?:^|[^\w@])@([a-z0-9][a-z0-9._-]{0,31})`)

// resolveMentions returns the IDs of the channel's readers that text
// mentions (by name, group, @here or @channel), without the author.
func (s *Service) resolveMentions(ch *Channel, text, author string) []string {
	names := mentionRE.FindAllStringSubmatch(text, 20)
	if len(names) == 0 {
		return nil
	}
	readers := s.readers(ch)
	byName := map[string]string{}
	if us, err := s.users.Users(); err == nil {
		for _, u := range us {
			byName[u.Name] = u.ID
		}
	}
	want := map[string]bool{}
	s.mu.RLock()
	groups := map[string]*Group{}
	for _, g := range s.groups {
		groups[g.Name] = g
	}
	s.mu.RUnlock()
	for _, m := range names {
		switch n := m[1]; {
		case n == "channel" || n == "everyone" || n == "here":
			// @here reaches everyone too: presence is per device, and a
			// household wants the ping on the phone in the pocket.
			for _, u := range readers {
				want[u] = true
			}
		case groups[n] != nil:
			for _, u := range groups[n].Members {
				want[u] = true
			}
		case byName[n] != "":
			want[byName[n]] = true
		}
	}
	var out []string
	for _, u := range readers {
		if want[u] && u != author {
			out = append(out, u)
		}
	}
	return out
}

// notify stores notifications for a new message: mentions, and every other
// member of a direct conversation.
func (s *Service) notify(tx *store.Tx, ev *events, now time.Time, ch *Channel, m Message) error {
	targets := map[string]string{}
	for _, u := range m.Mentions {
		targets[u] = NotifyMention
	}
	if ch.Kind == KindDM {
		for _, u := range ch.Members {
			if u != m.Author {
				targets[u] = NotifyDM
			}
		}
	}
	for u, kind := range targets {
		id, err := tx.NextSeq(store.BucketNotifications)
		if err != nil {
			return err
		}
		n := Notification{ID: id, Kind: kind, Channel: m.Channel, MsgSeq: m.Seq, Author: m.Author, Text: clip(m.Text, 140), Created: now}
		if err := store.Put(tx, store.BucketNotifications, u+"/"+store.SeqKey(id), n); err != nil {
			return err
		}
		if err := ev.add(tx, now, "notification", "", []string{u}, n); err != nil {
			return err
		}
	}
	return nil
}

// maxNotifications bounds how many recent notifications are looked at.
const maxNotifications = 500

// recentNotifications calls fn with a user's newest notifications, newest
// first, at most maxNotifications of them.
func recentNotifications(tx *store.Tx, userID string, fn func(key string, n Notification) error) error {
	seen := 0
	return tx.EachReverse(store.BucketNotifications, userID+"/", "", func(k string, raw []byte) error {
		seen++
		if seen > maxNotifications {
			return store.ErrStop
		}
		var n Notification
		if err := json.Unmarshal(raw, &n); err != nil {
			return err
		}
		return fn(k, n)
	})
}

// unreadNotifications returns a user's recent unread notifications.
func unreadNotifications(tx *store.Tx, userID string) ([]Notification, error) {
	var out []Notification
	err := recentNotifications(tx, userID, func(_ string, n Notification) error {
		if !n.Read {
			out = append(out, n)
		}
		return nil
	})
	return out, err
}

// Notifications lists a user's recent notifications, newest first, for
// channels the user can still read.
func (s *Service) Notifications(userID string, limit int) ([]Notification, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	out := []Notification{}
	err := s.st.View(func(tx *store.Tx) error {
		return tx.EachReverse(store.BucketNotifications, userID+"/", "", func(_ string, raw []byte) error {
			if len(out) == limit {
				return store.ErrStop
			}
			var n Notification
			if err := json.Unmarshal(raw, &n); err != nil {
				return err
			}
			if s.CanRead(userID, n.Channel) {
				out = append(out, n)
			}
			return nil
		})
	})
	return out, err
}

// markNotificationsRead marks a channel's notifications up to seq read.
func markNotificationsRead(tx *store.Tx, userID, channelID string, seq uint64) error {
	type change struct {
		key string
		n   Notification
	}
	var changes []change
	err := recentNotifications(tx, userID, func(k string, n Notification) error {
		if !n.Read && n.Channel == channelID && n.MsgSeq <= seq {
			n.Read = true
			changes = append(changes, change{k, n})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		if err := store.Put(tx, store.BucketNotifications, c.key, c.n); err != nil {
			return err
		}
	}
	return nil
}
