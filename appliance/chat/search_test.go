package chat_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/chat"
)

// TestSearchExactWhileIndexing checks search against a plain scan of every
// message, with the messages still queued for the indexer, part indexed,
// and all indexed: the answer must be the same, newest first, and never
// show a private channel to a non-member.
func TestSearchExactWhileIndexing(t *testing.T) {
	f := newFixture(t)
	f.chat.IndexManually()
	g := f.general(t)
	private, err := f.chat.CreateChannel(f.mum, chat.ChannelRequest{Name: ptr("parents"), Kind: chat.KindPrivate, Members: ptr([]string{f.dad.ID})})
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields("apple pear plum fig kiwi lime")
	type posted struct {
		channel, author, text string
		seq                   uint64
		deleted               bool
	}
	var all []posted // in posting order, which is ordinal order
	for i := range 240 {
		// Each message has two or three words, spread so that pairs
		// co-occur at different rates.
		text := words[i%6] + " " + words[(i/6)%6]
		if i%5 == 0 {
			text += " " + words[(i/30)%6]
		}
		ch, u := g.ID, f.mum
		if i%4 == 1 {
			u = f.dad
		}
		if i%7 == 3 {
			ch = private.ID
		}
		m, err := f.chat.PostMessage(ctx, u, ch, chat.Post{Text: fmt.Sprintf("%s %d", text, i)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, posted{channel: ch, author: u.ID, text: m.Text, seq: m.Seq})
	}
	// An edit and a delete while the messages may still be queued.
	edited := &all[10]
	if _, err := f.chat.EditMessage(f.mum, edited.channel, edited.seq, "kiwi lime edited"); err != nil {
		t.Fatal(err)
	}
	edited.text = "kiwi lime edited"
	if _, err := f.chat.DeleteMessage(f.mum, all[20].channel, all[20].seq); err != nil {
		t.Fatal(err)
	}
	all[20].deleted = true

	want := func(userID string, q chat.SearchQuery) []string {
		qw := strings.Fields(strings.ToLower(q.Text))
		var out []string
		for i := len(all) - 1; i >= 0 && len(out) < q.Limit; i-- {
			p := all[i]
			if p.deleted || (p.channel == private.ID && userID == f.kid.ID) ||
				(q.Channel != "" && p.channel != q.Channel) || (q.Author != "" && p.author != q.Author) {
				continue
			}
			if !containsAll(strings.Fields(p.text), qw) {
				continue
			}
			out = append(out, fmt.Sprintf("%s/%d", p.channel, p.seq))
		}
		return out
	}
	queries := []chat.SearchQuery{
		{Text: "apple", Limit: 100},
		{Text: "plum pear", Limit: 100},
		{Text: "fig kiwi lime", Limit: 100},
		{Text: "lime edited", Limit: 100},
		{Text: "apple pear", Limit: 5},
		{Text: "kiwi", Limit: 100, Author: f.dad.ID},
		{Text: "pear", Limit: 100, Channel: private.ID},
		{Text: "durian", Limit: 100},
	}
	check := func(state string) {
		t.Helper()
		for _, u := range []string{f.kid.ID, f.dad.ID} {
			for _, q := range queries {
				res, err := f.chat.Search(u, q)
				if err != nil {
					t.Fatalf("%s: Search(%+v): %v", state, q, err)
				}
				var got []string
				for _, r := range res {
					got = append(got, fmt.Sprintf("%s/%d", r.Channel, r.Seq))
				}
				if w := want(u, q); !slices.Equal(got, w) {
					t.Errorf("%s: Search(%+v) as %s = %v, want %v", state, q, u, got, w)
				}
			}
		}
	}
	check("queued")
	if _, err := f.chat.IndexQueued(100); err != nil {
		t.Fatal(err)
	}
	check("partly indexed")
	if _, err := f.chat.IndexQueued(1000); err != nil {
		t.Fatal(err)
	}
	check("indexed")
	// After the index holds everything, an edit updates it in place.
	if _, err := f.chat.EditMessage(f.mum, edited.channel, edited.seq, "durian"); err != nil {
		t.Fatal(err)
	}
	edited.text = "durian"
	check("edited after indexing")
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
