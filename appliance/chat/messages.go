package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store"
)

// Message is one post in a channel. Seq orders a channel's messages.
type Message struct {
	Channel     string              `json:"channel"`
	Seq         uint64              `json:"seq"`
	Author      string              `json:"author"`
	Text        string              `json:"text"`
	Spans       []Span              `json:"spans,omitempty"`
	Created     time.Time           `json:"created"`
	Edited      *time.Time          `json:"edited,omitempty"`
	Deleted     bool                `json:"deleted,omitempty"`
	ReplyTo     uint64              `json:"reply_to,omitempty"`
	Quote       *Quote              `json:"quote,omitempty"`
	Reactions   map[string][]string `json:"reactions,omitempty"`
	Attachments []Attachment        `json:"attachments,omitempty"`
	Mentions    []string            `json:"mentions,omitempty"`
	Ordinal     uint64              `json:"-"`
	Key         string              `json:"key,omitempty"`
}

// Quote is the start of a replied-to message, kept with the reply.
type Quote struct {
	Author string `json:"author"`
	Text   string `json:"text"`
}

// storedMessage carries the fields Message hides from JSON clients.
type storedMessage struct {
	Message
	Ordinal uint64 `json:"ordinal"`
}

func msgKey(channel string, seq uint64) string { return channel + "/" + store.SeqKey(seq) }

func getMessage(tx *store.Tx, channel string, seq uint64) (Message, bool, error) {
	sm, ok, err := store.Get[storedMessage](tx, store.BucketMessages, msgKey(channel, seq))
	sm.Message.Ordinal = sm.Ordinal
	return sm.Message, ok, err
}

func putMessage(tx *store.Tx, m Message) error {
	return store.Put(tx, store.BucketMessages, msgKey(m.Channel, m.Seq), storedMessage{Message: m, Ordinal: m.Ordinal})
}

// Post is a message to send. Key, chosen by the client, makes a resend
// (after a lost acknowledgement, or from an offline queue) return the
// first message instead of posting twice.
type Post struct {
	Text        string   `json:"text"`
	ReplyTo     uint64   `json:"reply_to"`
	Attachments []string `json:"attachments"`
	Key         string   `json:"key"`
}

func cleanText(t string) (string, error) {
	t = strings.TrimRight(t, " \t\r\n")
	if !utf8.ValidString(t) {
		return "", fmt.Errorf("the message is not valid UTF-8 text")
	}
	if utf8.RuneCountInString(t) > MaxMessageRunes {
		return "", ErrMessageTooLong
	}
	return t, nil
}

type idemRecord struct {
	Channel string    `json:"channel"`
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
}

// PostMessage stores a message, acknowledged only once it is durable, and
// notifies mentioned users (and the other members of a direct
// conversation).
func (s *Service) PostMessage(ctx context.Context, user auth.User, channelID string, p Post) (Message, error) {
	text, err := cleanText(p.Text)
	if err != nil {
		return Message{}, err
	}
	if text == "" && len(p.Attachments) == 0 {
		return Message{}, ErrEmptyMessage
	}
	if len(p.Key) > 64 {
		return Message{}, fmt.Errorf("a message key is at most 64 characters")
	}
	ch, err := s.channel(user.ID, channelID)
	if err != nil {
		return Message{}, err
	}
	mentioned := s.resolveMentions(&ch, text, user.ID)
	spans := Format(text)
	var msg Message
	now := s.now().UTC()
	err = s.commit(func(tx *store.Tx, ev *events) error {
		if p.Key != "" {
			rec, ok, err := store.Get[idemRecord](tx, store.BucketIdempotency, user.ID+"/"+p.Key)
			if err != nil {
				return err
			}
			if ok {
				m, found, err := getMessage(tx, rec.Channel, rec.Seq)
				if err != nil {
					return err
				}
				if found {
					msg = m
					return nil
				}
			}
		}
		cur, ok, err := store.Get[Channel](tx, store.BucketChannels, channelID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoChannel
		}
		m := Message{Channel: channelID, Seq: cur.LastSeq + 1, Author: user.ID, Text: text, Spans: spans,
			Created: now, Mentions: mentioned, Key: p.Key}
		if p.ReplyTo != 0 {
			orig, found, err := getMessage(tx, channelID, p.ReplyTo)
			if err != nil {
				return err
			}
			if !found || orig.Deleted {
				return ErrNoMessage
			}
			m.ReplyTo = p.ReplyTo
			m.Quote = &Quote{Author: orig.Author, Text: clip(orig.Text, 200)}
		}
		for _, aid := range p.Attachments {
			a, err := claimAttachment(tx, aid, user.ID, channelID, m.Seq)
			if err != nil {
				return err
			}
			m.Attachments = append(m.Attachments, a)
		}
		if m.Ordinal, err = tx.NextSeq(store.BucketSearch); err != nil {
			return err
		}
		if err := queueForIndex(tx, m); err != nil {
			return err
		}
		if err := putMessage(tx, m); err != nil {
			return err
		}
		cur.LastSeq, cur.LastAt = m.Seq, now
		if err := store.Put(tx, store.BucketChannels, channelID, cur); err != nil {
			return err
		}
		if p.Key != "" {
			if err := store.Put(tx, store.BucketIdempotency, user.ID+"/"+p.Key, idemRecord{Channel: channelID, Seq: m.Seq, At: now}); err != nil {
				return err
			}
		}
		if err := ev.add(tx, now, "message.new", channelID, nil, m); err != nil {
			return err
		}
		// The author has read their own message.
		if err := setRead(tx, ev, now, user.ID, channelID, m.Seq); err != nil {
			return err
		}
		if err := s.notify(tx, ev, now, &ch, m); err != nil {
			return err
		}
		msg = m
		return nil
	})
	if err != nil {
		return Message{}, fmt.Errorf("post message: %w", err)
	}
	s.kickIndexer()
	s.mu.Lock()
	if c := s.channels[channelID]; c != nil && msg.Seq > c.LastSeq {
		c.LastSeq, c.LastAt = msg.Seq, msg.Created
	}
	s.mu.Unlock()
	return msg, nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// changeMessage applies fn to a stored message inside one transaction and
// records an event of type typ with the result.
func (s *Service) changeMessage(user auth.User, channelID string, seq uint64, typ string,
	fn func(tx *store.Tx, m *Message) error) (Message, error) {
	if _, err := s.channel(user.ID, channelID); err != nil {
		return Message{}, err
	}
	var out Message
	err := s.commit(func(tx *store.Tx, ev *events) error {
		m, ok, err := getMessage(tx, channelID, seq)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoMessage
		}
		if m.Deleted {
			return ErrDeleted
		}
		if err := fn(tx, &m); err != nil {
			return err
		}
		if err := putMessage(tx, m); err != nil {
			return err
		}
		out = m
		return ev.add(tx, s.now(), typ, channelID, nil, m)
	})
	return out, err
}

// EditMessage replaces a message's text. Only its author may.
func (s *Service) EditMessage(user auth.User, channelID string, seq uint64, text string) (Message, error) {
	text, err := cleanText(text)
	if err != nil {
		return Message{}, err
	}
	return s.changeMessage(user, channelID, seq, "message.edit", func(tx *store.Tx, m *Message) error {
		if m.Author != user.ID {
			return ErrNotAuthor
		}
		if text == "" && len(m.Attachments) == 0 {
			return ErrEmptyMessage
		}
		if err := unindexMessage(tx, *m); err != nil {
			return err
		}
		now := s.now().UTC()
		m.Text, m.Spans, m.Edited = text, Format(text), &now
		return indexMessage(tx, *m)
	})
}

// DeleteMessage removes a message's content (its place in the channel
// stays, marked deleted) and its attachments. Its author or an admin may.
func (s *Service) DeleteMessage(user auth.User, channelID string, seq uint64) (Message, error) {
	var files []string
	m, err := s.changeMessage(user, channelID, seq, "message.delete", func(tx *store.Tx, m *Message) error {
		if m.Author != user.ID && user.Role != auth.RoleAdmin {
			return ErrNotAuthor
		}
		if err := unindexMessage(tx, *m); err != nil {
			return err
		}
		for _, a := range m.Attachments {
			if err := tx.Delete(store.BucketAttachments, a.ID); err != nil {
				return err
			}
			files = append(files, a.ID)
		}
		m.Text, m.Spans, m.Attachments, m.Reactions, m.Quote, m.Mentions = "", nil, nil, nil, nil, nil
		m.Deleted = true
		return nil
	})
	if err == nil {
		s.removeFiles(files)
	}
	return m, err
}

// React adds (on) or removes a user's emoji reaction.
func (s *Service) React(user auth.User, channelID string, seq uint64, emoji string, on bool) (Message, error) {
	if !validEmoji(emoji) {
		return Message{}, ErrBadReaction
	}
	return s.changeMessage(user, channelID, seq, "message.reaction", func(_ *store.Tx, m *Message) error {
		users := m.Reactions[emoji]
		has := contains(users, user.ID)
		switch {
		case on && !has:
			if m.Reactions == nil {
				m.Reactions = map[string][]string{}
			}
			if len(m.Reactions) >= 20 && len(users) == 0 {
				return fmt.Errorf("a message has at most 20 different reactions")
			}
			m.Reactions[emoji] = append(users, user.ID)
		case !on && has:
			var keep []string
			for _, u := range users {
				if u != user.ID {
					keep = append(keep, u)
				}
			}
			if len(keep) == 0 {
				delete(m.Reactions, emoji)
			} else {
				m.Reactions[emoji] = keep
			}
		}
		return nil
	})
}

// validEmoji accepts a short run of symbols and joiners: one emoji with its
// modifiers, never text.
func validEmoji(e string) bool {
	if e == "" || len(e) > 32 || !utf8.ValidString(e) {
		return false
	}
	for _, r := range e {
		switch {
		case r == 0x200d || (r >= 0xfe00 && r <= 0xfe0f) || (r >= 0x1f3fb && r <= 0x1f3ff): // joiner, variation, skin tone
		case r >= 0x1f000 || (r >= 0x2190 && r <= 0x2bff) || r == 0x00a9 || r == 0x00ae || (r >= 0xe0020 && r <= 0xe007f):
		default:
			return false
		}
	}
	return true
}

// Page is a slice of a channel's history, oldest first.
type Page struct {
	Messages []Message `json:"messages"`
	More     bool      `json:"more"` // older (or, with after, newer) messages exist
}

// MaxPage is the most messages one history request returns.
const MaxPage = 200

// History returns up to limit messages before seq before (0: the newest),
// or after seq after when after > 0.
func (s *Service) History(userID, channelID string, before, after uint64, limit int) (Page, error) {
	if _, err := s.channel(userID, channelID); err != nil {
		return Page{}, err
	}
	if limit <= 0 || limit > MaxPage {
		limit = 50
	}
	var p Page
	prefix := channelID + "/"
	err := s.st.View(func(tx *store.Tx) error {
		collect := func(_ string, raw []byte) error {
			if len(p.Messages) == limit {
				p.More = true
				return store.ErrStop
			}
			var sm storedMessage
			if err := json.Unmarshal(raw, &sm); err != nil {
				return err
			}
			p.Messages = append(p.Messages, sm.Message)
			return nil
		}
		if after > 0 {
			return tx.EachFrom(store.BucketMessages, prefix, msgKey(channelID, after+1), collect)
		}
		from := ""
		if before > 0 {
			from = msgKey(channelID, before)
		}
		if err := tx.EachReverse(store.BucketMessages, prefix, from, collect); err != nil {
			return err
		}
		for i, j := 0, len(p.Messages)-1; i < j; i, j = i+1, j-1 {
			p.Messages[i], p.Messages[j] = p.Messages[j], p.Messages[i]
		}
		return nil
	})
	if p.Messages == nil {
		p.Messages = []Message{}
	}
	return p, err
}

// readKey is a user's read position in a channel.
func readKey(userID, channelID string) string { return userID + "/" + channelID }

func readPos(tx *store.Tx, userID, channelID string) (uint64, error) {
	n, _, err := store.Get[uint64](tx, store.BucketReads, readKey(userID, channelID))
	return n, err
}

// setRead moves a read position forward (never back) and tells the user's
// other devices.
func setRead(tx *store.Tx, ev *events, now time.Time, userID, channelID string, seq uint64) error {
	cur, err := readPos(tx, userID, channelID)
	if err != nil || seq <= cur {
		return err
	}
	if err := store.Put(tx, store.BucketReads, readKey(userID, channelID), seq); err != nil {
		return err
	}
	return ev.add(tx, now, "read", "", []string{userID}, map[string]any{"channel": channelID, "seq": seq})
}

// MarkRead records that a user has read a channel up to seq, which also
// clears the channel's mentions and notifications up to there.
func (s *Service) MarkRead(userID, channelID string, seq uint64) error {
	ch, err := s.channel(userID, channelID)
	if err != nil {
		return err
	}
	seq = min(seq, ch.LastSeq)
	return s.commit(func(tx *store.Tx, ev *events) error {
		if err := setRead(tx, ev, s.now().UTC(), userID, channelID, seq); err != nil {
			return err
		}
		return markNotificationsRead(tx, userID, channelID, seq)
	})
}

// countUnread counts others' messages after read, up to 100.
func countUnread(tx *store.Tx, userID, channelID string, read uint64) (int, error) {
	n := 0
	err := tx.EachReverse(store.BucketMessages, channelID+"/", "", func(_ string, raw []byte) error {
		var m struct {
			Seq     uint64 `json:"seq"`
			Author  string `json:"author"`
			Deleted bool   `json:"deleted"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		if m.Seq <= read || n >= 100 {
			return store.ErrStop
		}
		if m.Author != userID && !m.Deleted {
			n++
		}
		return nil
	})
	return n, err
}
