package store_test

import (
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

func TestCursorWalks(t *testing.T) {
	s := storetest.Open(t)
	keys := []string{"a/1", "a/2", "a/3", "b/1", "c/1"}
	err := s.Update(func(tx *store.Tx) error {
		for _, k := range keys {
			if err := tx.PutRaw(store.BucketMessages, k, []byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	walk := func(fn func(tx *store.Tx, add func(string, []byte) error) error) string {
		var got []string
		s.View(func(tx *store.Tx) error {
			return fn(tx, func(k string, _ []byte) error { got = append(got, k); return nil })
		})
		return strings.Join(got, " ")
	}
	tests := []struct {
		name string
		fn   func(tx *store.Tx, add func(string, []byte) error) error
		want string
	}{
		{"reverse a", func(tx *store.Tx, add func(string, []byte) error) error {
			return tx.EachReverse(store.BucketMessages, "a/", "", add)
		}, "a/3 a/2 a/1"},
		{"reverse a before 3", func(tx *store.Tx, add func(string, []byte) error) error {
			return tx.EachReverse(store.BucketMessages, "a/", "a/3", add)
		}, "a/2 a/1"},
		{"reverse c (last)", func(tx *store.Tx, add func(string, []byte) error) error {
			return tx.EachReverse(store.BucketMessages, "c/", "", add)
		}, "c/1"},
		{"reverse none", func(tx *store.Tx, add func(string, []byte) error) error {
			return tx.EachReverse(store.BucketMessages, "z/", "", add)
		}, ""},
		{"from a/2", func(tx *store.Tx, add func(string, []byte) error) error {
			return tx.EachFrom(store.BucketMessages, "a/", "a/2", add)
		}, "a/2 a/3"},
		{"prefix b", func(tx *store.Tx, add func(string, []byte) error) error {
			return tx.EachRaw(store.BucketMessages, "b/", add)
		}, "b/1"},
	}
	for _, tt := range tests {
		if got := walk(tt.fn); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, got, tt.want)
		}
	}
	s.View(func(tx *store.Tx) error {
		if k, v, _ := tx.Last(store.BucketMessages, "a/"); k != "a/3" || string(v) != "a/3" {
			t.Errorf("Last(a/) = %q %q", k, v)
		}
		if k, _, _ := tx.Last(store.BucketMessages, "q/"); k != "" {
			t.Errorf("Last(q/) = %q", k)
		}
		return nil
	})
}
