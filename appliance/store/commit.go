package store

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultMaxBatch is the most Update calls one group commit carries.
const DefaultMaxBatch = 1000

// gatherWait bounds how long a commit waits for the writers of the
// previous one to come back (see gather).
const gatherWait = time.Millisecond

// committer is the store's one writer: Update calls queue their functions,
// and a single goroutine runs every pending one in one bbolt transaction,
// commits it (fsync) and then answers each caller. Calls that arrive while a
// commit is on disk form the next transaction, so the batch grows with the
// load and no caller waits for a timer.
type committer struct {
	db  *bolt.DB
	max int

	mu      sync.Mutex
	pending []*commitCall
	closed  bool
	wake    chan struct{} // one token: pending is not empty
	done    chan struct{} // closed when the writer has returned
}

type commitCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

var callPool = sync.Pool{New: func() any { return &commitCall{err: make(chan error, 1)} }}

func newCommitter(db *bolt.DB, max int) *committer {
	if max <= 0 {
		max = DefaultMaxBatch
	}
	c := &committer{db: db, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c
}

// update queues fn and waits for its transaction's commit.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	call := callPool.Get().(*commitCall)
	call.fn = fn
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		call.fn = nil
		callPool.Put(call)
		return ErrClosed
	}
	c.pending = append(c.pending, call)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	err := <-call.err
	call.fn = nil
	callPool.Put(call)
	return err
}

// close lets the queued calls finish, then stops the writer.
func (c *committer) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	var batch []*commitCall
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	last := 0 // calls in the previous commit
	for range c.wake {
		for {
			if last > 1 {
				c.gather(gather, last)
			}
			c.mu.Lock()
			n := min(len(c.pending), c.max)
			batch = append(batch[:0], c.pending[:n]...)
			rest := copy(c.pending, c.pending[n:])
			clear(c.pending[rest:])
			c.pending = c.pending[:rest]
			closed := c.closed && n == 0
			c.mu.Unlock()
			if closed {
				return
			}
			if n == 0 {
				last = 0
				break
			}
			c.commit(batch)
			clear(batch)
			last = n
		}
	}
}

// gather waits, at most gatherWait, until as many calls are pending as the
// previous commit carried. The callers that commit just answered need a
// moment to send their next write; without the wait they would form a
// commit of their own after the next one, and concurrent writers would
// settle into two half-size groups taking turns.
func (c *committer) gather(t *time.Timer, want int) {
	t.Reset(gatherWait)
	defer t.Stop()
	for {
		c.mu.Lock()
		enough := len(c.pending) >= want || c.closed
		c.mu.Unlock()
		if enough {
			return
		}
		select {
		case <-c.wake:
		case <-t.C:
			return
		}
	}
}

// commit runs batch in one transaction. When one function fails, the
// transaction is rolled back, that caller gets its error, and the others
// run again in a new transaction (so a function may run more than once).
func (c *committer) commit(batch []*commitCall) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, call := range batch {
				if err := safeCall(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			batch[failed].err <- err
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			continue
		}
		for _, call := range batch {
			call.err <- err
		}
		return
	}
}

func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a write transaction: %v", p)
		}
	}()
	return fn(tx)
}
