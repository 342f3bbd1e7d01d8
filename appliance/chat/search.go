package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hearth-home/hearth/appliance/store"
)

// The search index maps each word of a message to the message:
// key "word\x00ordinal" → "channel/seq", where the ordinal grows with every
// message, so a word's postings read newest first by walking backwards, and
// a query of several words intersects their postings by ordinal, jumping
// from one word's postings to the next (a leapfrog join), so it costs about
// as much as the rarest word's postings, and stops at the result limit.
//
// Posting a message does not write its postings: it queues the message
// (key "\x00new\x00ordinal" → "channel/seq", an append) and a background
// indexer writes the postings of many queued messages in one transaction,
// off the commit path (a message's words touch as many index pages as it
// has words; batched, the pages of common words are shared). Queued
// messages are always the newest (the indexer takes the oldest first), so
// a search reads them first, then the index below them: it stays exact.

const (
	maxTermsPerMessage = 100
	minTermLen         = 2
	maxTermLen         = 40
	// queuePrefix starts the keys of messages waiting for the indexer; no
	// word starts with a NUL byte.
	queuePrefix = "\x00new\x00"
	// indexDelay is how long the indexer lets posts gather before it
	// writes their postings; indexChunk is the most messages it indexes in
	// one transaction (which every other write waits for).
	indexDelay = 200 * time.Millisecond
	indexChunk = 500
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

func queueKey(ordinal uint64) string { return queuePrefix + store.SeqKey(ordinal) }

// queueForIndex records that m (with its ordinal set) awaits the indexer.
func queueForIndex(tx *store.Tx, m Message) error {
	return tx.PutRaw(store.BucketSearch, queueKey(m.Ordinal), []byte(msgKey(m.Channel, m.Seq)))
}

func indexMessage(tx *store.Tx, m Message) error {
	ref := []byte(msgKey(m.Channel, m.Seq))
	for _, t := range searchTerms(m) {
		if err := tx.PutRaw(store.BucketSearch, postingKey(t, m.Ordinal), ref); err != nil {
			return err
		}
	}
	return nil
}

// unindexMessage removes m's postings (those it has: a queued message may
// have none yet).
func unindexMessage(tx *store.Tx, m Message) error {
	for _, t := range searchTerms(m) {
		if err := tx.Delete(store.BucketSearch, postingKey(t, m.Ordinal)); err != nil {
			return err
		}
	}
	return nil
}

// kickIndexer makes sure the indexer runs soon: it starts one unless one is
// running, which then goes round once more.
func (s *Service) kickIndexer() {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.idxManual {
		return
	}
	if s.idxRunning {
		s.idxAgain = true
		return
	}
	s.idxRunning = true
	go s.runIndexer()
}

// runIndexer indexes queued messages until none is left, then ends. It
// waits indexDelay before a round unless the last one left a backlog.
func (s *Service) runIndexer() {
	n := 0
	for {
		if n < indexChunk {
			time.Sleep(indexDelay)
		}
		var err error
		n, err = s.indexQueued(indexChunk)
		s.idxMu.Lock()
		if err != nil || (n < indexChunk && !s.idxAgain) {
			s.idxRunning = false
			s.idxMu.Unlock()
			if err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Warn("index messages for search", "err", err)
			}
			return
		}
		s.idxAgain = false
		s.idxMu.Unlock()
	}
}

// queuedForIndex reports whether any message awaits the indexer.
func (s *Service) queuedForIndex() bool {
	found := false
	_ = s.st.View(func(tx *store.Tx) error {
		return tx.EachRaw(store.BucketSearch, queuePrefix, func(string, []byte) error {
			found = true
			return store.ErrStop
		})
	})
	return found
}

// indexQueued writes the postings of up to max queued messages, oldest
// first, and takes them off the queue. It returns how many it took.
func (s *Service) indexQueued(max int) (int, error) {
	n := 0
	err := s.st.Update(func(tx *store.Tx) error {
		n = 0
		var done []string
		err := tx.EachRaw(store.BucketSearch, queuePrefix, func(k string, ref []byte) error {
			if len(done) == max {
				return store.ErrStop
			}
			done = append(done, k)
			raw, err := tx.GetRaw(store.BucketMessages, string(ref))
			if err != nil || raw == nil {
				return err // gone: nothing to index
			}
			var sm storedMessage
			if err := json.Unmarshal(raw, &sm); err != nil {
				return err
			}
			sm.Message.Ordinal = sm.Ordinal
			if sm.Deleted {
				return nil
			}
			return indexMessage(tx, sm.Message)
		})
		if err != nil {
			return err
		}
		for _, k := range done {
			if err := tx.Delete(store.BucketSearch, k); err != nil {
				return err
			}
		}
		n = len(done)
		return nil
	})
	return n, err
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
	// take adds the message at ref when the user may read it and it passes
	// the filters; has, when not nil, must hold for every word.
	take := func(tx *store.Tx, ref string, has func(Message) bool) error {
		chID, _, _ := strings.Cut(ref, "/")
		if (q.Channel != "" && chID != q.Channel) || !s.CanRead(userID, chID) {
			return nil
		}
		raw, err := tx.GetRaw(store.BucketMessages, ref)
		if err != nil || raw == nil {
			return err
		}
		var sm storedMessage
		if err := json.Unmarshal(raw, &sm); err != nil {
			return err
		}
		m := sm.Message
		if m.Deleted || (q.Author != "" && m.Author != q.Author) || (has != nil && !has(m)) {
			return nil
		}
		out = append(out, SearchResult{Message: m, ChannelName: s.channelName(chID)})
		return nil
	}
	hasAll := func(m Message) bool {
		have := searchTerms(m)
		for _, w := range words {
			if !slices.Contains(have, w) {
				return false
			}
		}
		return true
	}
	err := s.st.View(func(tx *store.Tx) error {
		// The queued messages, newest first: their words are checked here.
		below := uint64(math.MaxUint64) // the index answers for ordinals up to this
		err := tx.EachReverse(store.BucketSearch, queuePrefix, "", func(k string, ref []byte) error {
			ord, err := strconv.ParseUint(k[len(queuePrefix):], 16, 64)
			if err != nil {
				return fmt.Errorf("search queue key %q: %w", k, err)
			}
			below = ord - 1
			if len(out) == q.Limit {
				return nil // keep walking to find the lowest queued ordinal
			}
			return take(tx, string(ref), hasAll)
		})
		if err != nil || len(out) == q.Limit {
			return err
		}
		return intersect(tx, words, below, func(ref []byte) (bool, error) {
			if err := take(tx, string(ref), nil); err != nil {
				return false, err
			}
			return len(out) < q.Limit, nil
		})
	})
	return out, err
}

// intersect calls fn with the reference of every message whose ordinal is
// at most upto and that has every word, newest first, until fn returns
// false.
func intersect(tx *store.Tx, words []string, upto uint64, fn func(ref []byte) (bool, error)) error {
	for {
		// Leapfrog: every word's newest posting at or below target, until
		// they agree on one.
		target, agree := upto, 0
		var ref []byte
		for i := 0; agree < len(words); i = (i + 1) % len(words) {
			ord, r, ok, err := lastPosting(tx, words[i], target)
			if err != nil || !ok {
				return err
			}
			if ord == target {
				agree++
			} else {
				target, agree = ord, 1
			}
			ref = r
		}
		more, err := fn(ref)
		if err != nil || !more || target == 0 {
			return err
		}
		upto = target - 1
	}
}

// lastPosting returns word's newest posting with an ordinal at most upto.
func lastPosting(tx *store.Tx, word string, upto uint64) (ord uint64, ref []byte, ok bool, err error) {
	prefix := word + "\x00"
	before := ""
	if upto < math.MaxUint64 {
		before = postingKey(word, upto+1)
	}
	err = tx.EachReverse(store.BucketSearch, prefix, before, func(k string, v []byte) error {
		n, err := strconv.ParseUint(k[len(prefix):], 16, 64)
		if err != nil {
			return fmt.Errorf("search key %q: %w", k, err)
		}
		ord, ref, ok = n, append([]byte(nil), v...), true
		return store.ErrStop
	})
	return ord, ref, ok, err
}

func (s *Service) channelName(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.channels[id]; c != nil {
		return c.Name
	}
	return ""
}
