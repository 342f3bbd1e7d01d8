package proof_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/store"
)

// write is one message a client tried to post, with its attachment.
type write struct {
	key     string
	text    string
	file    []byte // nil: no attachment
	name    string
	acked   bool // the server answered 201
	checked bool // seen stored whole after a restart
}

// crashTally counts what the kill cycles saw.
type crashTally struct {
	cycles, acked, ackedFiles, lost, unackedPresent, unackedAbsent, retried int
}

// TestCrashConsistency runs the real binary, has concurrent clients post
// messages (with idempotency keys) and upload attachments, SIGKILLs it at
// a random moment, and after each restart checks that every acknowledged
// message and attachment is there byte for byte, that nothing
// unacknowledged is half there, that no key was posted twice, and that
// the database passes its consistency check. HEARTH_PROOF_CYCLES sets the
// number of kills (5; `make soak` runs 50).
func TestCrashConsistency(t *testing.T) {
	cycles := envInt("HEARTH_PROOF_CYCLES", 5)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	data := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, data, addr)
	adminC, _ := setupAdmin(t, p.url(), data, "mum", "correct horse battery")
	ch := adminC.createChannel(t, map[string]any{"name": "crash"})
	api := adminC.token(t)

	var mu sync.Mutex
	ledger := map[string]*write{}
	var tally crashTally
	dbPath := filepath.Join(data, store.FileName)

	for cycle := 0; cycle < cycles; cycle++ {
		if cycle > 0 {
			p = startProc(t, data, addr)
			checkLedger(t, api, ch.ID, ledger, &tally, true)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wr := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil && i < 10000; i++ {
					wt := &write{key: fmt.Sprintf("c%d-w%d-%d", cycle, w, i)}
					wt.text = "message " + wt.key
					if wr.IntN(3) == 0 {
						wt.file = make([]byte, 1+wr.IntN(96<<10))
						for j := range wt.file {
							wt.file[j] = byte(wr.Uint32())
						}
						wt.name = wt.key + ".bin"
					}
					mu.Lock()
					ledger[wt.key] = wt
					mu.Unlock()
					if postWrite(ctx, api, ch.ID, wt) != nil {
						return // killed: this write is in doubt, the next would be refused
					}
					mu.Lock()
					wt.acked = true
					tally.acked++
					if wt.file != nil {
						tally.ackedFiles++
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(1400)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
		if _, err := store.Verify(dbPath); err != nil {
			t.Fatalf("cycle %d: database after SIGKILL: %v", cycle, err)
		}
		tally.cycles++
	}
	p = startProc(t, data, addr)
	checkLedger(t, api, ch.ID, ledger, &tally, false)
	p.stop()
	info, err := store.Verify(dbPath)
	if err != nil {
		t.Fatalf("database after the last clean stop: %v", err)
	}
	t.Logf("kill cycles %d: acknowledged messages %d (with %d attachments), lost %d; unacknowledged but complete %d, absent %d; retried with the same key %d; db %d bytes",
		tally.cycles, tally.acked, tally.ackedFiles, tally.lost, tally.unackedPresent, tally.unackedAbsent, tally.retried, info.Size)
	if tally.acked == 0 {
		t.Fatal("no write was acknowledged: the harness measured nothing")
	}
}

// postWrite uploads wt's attachment, if any, and posts its message.
func postWrite(ctx context.Context, api *apiClient, channelID string, wt *write) error {
	var ids []string
	if wt.file != nil {
		var up struct {
			Attachment attachment `json:"attachment"`
		}
		err := api.send(ctx, "POST", "/api/v1/channels/"+channelID+"/attachments?name="+url.QueryEscape(wt.name),
			"application/octet-stream", bytes.NewReader(wt.file), &up)
		if err != nil {
			return err
		}
		ids = append(ids, up.Attachment.ID)
	}
	var out struct {
		Message message `json:"message"`
	}
	return api.do(ctx, "POST", "/api/v1/channels/"+channelID+"/messages",
		map[string]any{"text": wt.text, "key": wt.key, "attachments": ids}, &out)
}

// checkLedger compares the channel's history with everything the clients
// ever wrote: acknowledged writes must be there (their bytes are compared
// the first time they are seen), unacknowledged ones whole or absent. With
// retry, every unacknowledged write is posted again with its key, so it
// ends acknowledged, and the next check proves it was stored once.
func checkLedger(t *testing.T, api *apiClient, channelID string, ledger map[string]*write, tally *crashTally, retry bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msgs, err := api.history(ctx, channelID)
	if err != nil {
		t.Fatalf("read history after restart: %v", err)
	}
	byKey := map[string]message{}
	for _, m := range msgs {
		if _, dup := byKey[m.Key]; dup {
			t.Errorf("key %q posted twice (seq %d)", m.Key, m.Seq)
		}
		byKey[m.Key] = m
		if ledger[m.Key] == nil {
			t.Errorf("message %d with key %q was never written", m.Seq, m.Key)
		}
	}
	for key, wt := range ledger {
		m, ok := byKey[key]
		if ok && !wt.checked {
			if err := intact(ctx, api, wt, m); err != nil {
				t.Errorf("message %q: %v", key, err)
				tally.lost++
			}
			wt.checked = true
		} else if ok && m.Text != wt.text {
			t.Errorf("message %q changed: %q", key, m.Text)
		}
		switch {
		case wt.acked && !ok:
			t.Errorf("acknowledged message %q lost", key)
			tally.lost++
		case !wt.acked && ok:
			tally.unackedPresent++
		case !wt.acked:
			tally.unackedAbsent++
		}
		if wt.acked {
			continue
		}
		if !retry {
			if !ok {
				delete(ledger, key)
			}
			continue
		}
		if err := postWrite(ctx, api, channelID, wt); err != nil {
			t.Fatalf("repost %q after restart: %v", key, err)
		}
		wt.acked = true
		tally.retried++
		tally.acked++
		if wt.file != nil {
			tally.ackedFiles++
		}
	}
}

// intact checks a stored message against what was written.
func intact(ctx context.Context, api *apiClient, wt *write, m message) error {
	if m.Text != wt.text {
		return fmt.Errorf("text %q, want %q", m.Text, wt.text)
	}
	if wt.file == nil {
		return nil
	}
	if len(m.Attachments) != 1 {
		return fmt.Errorf("%d attachments, want 1", len(m.Attachments))
	}
	var got []byte
	if err := api.send(ctx, "GET", "/api/v1/attachments/"+m.Attachments[0].ID, "", nil, &got); err != nil {
		return fmt.Errorf("download attachment: %w", err)
	}
	if !bytes.Equal(got, wt.file) {
		return fmt.Errorf("attachment is %d bytes and differs from the %d uploaded", len(got), len(wt.file))
	}
	return nil
}
