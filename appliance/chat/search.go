package chat

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/hearth-home/hearth/appliance/store"
)

// The search index maps each word of a message to the message:
// key "word\x00ordinal" → "channel/seq", where the ordinal grows with every
// message, so a word's postings read newest first by walking backwards.

const (
	maxTermsPerMessage = 100
	minTermLen         = 2
	maxTermLen         = 40
	// maxCandidates bounds the postings one query walks.
	maxCandidates = 20000
)

// terms returns the distinct lowercase words of text.
func terms(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if n := len([]rune(w)); n < minTermLen || n > maxTermLen || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
		if len(out) == maxTermsPerMessage {
			break
		}
	}
	return out
}

func postingKey(term string, ordinal uint64) string { return term + "\x00" + store.SeqKey(ordinal) }

func indexMessage(tx *store.Tx, m Message) error {
	ref := []byte(msgKey(m.Channel, m.Seq))
	for _, t := range searchTerms(m) {
		if err := tx.PutRaw(store.BucketSearch, postingKey(t, m.Ordinal), ref); err != nil {
			return err
		}
	}
	return nil
}

func unindexMessage(tx *store.Tx, m Message) error {
	for _, t := range searchTerms(m) {
		if err := tx.Delete(store.BucketSearch, postingKey(t, m.Ordinal)); err != nil {
			return err
		}
	}
	return nil
}

// searchTerms are the words of a message's text and attachment names.
func searchTerms(m Message) []string {
	text := m.Text
	for _, a := range m.Attachments {
		text += " " + a.Name
	}
	return terms(text)
}

// SearchQuery is a search: words that must all appear, optionally within
// one channel and by one author.
type SearchQuery struct {
	Text    string
	Channel string
	Author  string // user ID
	Limit   int
}

// SearchResult is a match.
type SearchResult struct {
	Message
	ChannelName string `json:"channel_name"`
}

// Search finds messages the user may read containing every word of the
// query, newest first.
func (s *Service) Search(userID string, q SearchQuery) ([]SearchResult, error) {
	words := terms(q.Text)
	out := []SearchResult{}
	if len(words) == 0 {
		return out, nil
	}
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 20
	}
	// Walk the longest word's postings: long words are rarer.
	lead := words[0]
	for _, w := range words[1:] {
		if len(w) > len(lead) {
			lead = w
		}
	}
	walked := 0
	err := s.st.View(func(tx *store.Tx) error {
		return tx.EachReverse(store.BucketSearch, lead+"\x00", "", func(_ string, ref []byte) error {
			walked++
			if walked > maxCandidates || len(out) == q.Limit {
				return store.ErrStop
			}
			chID, _, _ := strings.Cut(string(ref), "/")
			if (q.Channel != "" && chID != q.Channel) || !s.CanRead(userID, chID) {
				return nil
			}
			raw, err := tx.GetRaw(store.BucketMessages, string(ref))
			if err != nil || raw == nil {
				return err
			}
			var sm storedMessage
			if err := json.Unmarshal(raw, &sm); err != nil {
				return err
			}
			m := sm.Message
			if m.Deleted || (q.Author != "" && m.Author != q.Author) {
				return nil
			}
			have := map[string]bool{}
			for _, t := range searchTerms(m) {
				have[t] = true
			}
			for _, w := range words {
				if !have[w] {
					return nil
				}
			}
			out = append(out, SearchResult{Message: m, ChannelName: s.channelName(chID)})
			return nil
		})
	})
	return out, err
}

func (s *Service) channelName(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.channels[id]; c != nil {
		return c.Name
	}
	return ""
}
