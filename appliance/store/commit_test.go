package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

// Writers share commits; one that fails leaves nothing behind and costs the
// others nothing: each gets its own answer, and after Close no write is
// taken.
func TestGroupCommitFailureIsolated(t *testing.T) {
	s := storetest.Open(t)
	errOdd := errors.New("odd writers refuse")
	const writers = 40
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = s.Update(func(tx *store.Tx) error {
				if err := tx.PutRaw(store.BucketUsers, fmt.Sprintf("w%02d", w), []byte("x")); err != nil {
					return err
				}
				if w%2 == 1 {
					return errOdd
				}
				return nil
			})
		}()
	}
	wg.Wait()
	err := s.View(func(tx *store.Tx) error {
		for w := range writers {
			v, err := tx.GetRaw(store.BucketUsers, fmt.Sprintf("w%02d", w))
			if err != nil {
				return err
			}
			switch {
			case w%2 == 0 && (errs[w] != nil || v == nil):
				t.Errorf("writer %d: Update = %v, stored %q; want nil and its record", w, errs[w], v)
			case w%2 == 1 && (!errors.Is(errs[w], errOdd) || v != nil):
				t.Errorf("writer %d: Update = %v, stored %q; want its own error and nothing stored", w, errs[w], v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Update(func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Update after Close = %v, want ErrClosed", err)
	}
}
