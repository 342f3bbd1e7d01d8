package hub_test

// Fan-out benchmark: one hub, many real WebSocket clients on loopback. It
// runs only with -bench:
//
//	go test -run '^$' -bench '^BenchmarkFanout$' ./appliance/hub/

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hearth-home/hearth/appliance/hub"
)

// BenchmarkFanout publishes b.N channel events to 500 connected clients,
// at most 100 events ahead of the slowest client (so no queue overflows),
// and reports deliveries per second.
func BenchmarkFanout(b *testing.B) {
	const clients, ahead = 500, 100
	h := hub.New(hub.Config{Visible: func(string, string) bool { return true }})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := r.URL.Query().Get("user")
		h.Serve(w, r, hub.Client{UserID: u, SessionID: u + "-s"})
	}))
	defer srv.Close()
	defer h.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	got := make([]atomic.Int64, clients)
	var wg sync.WaitGroup
	for i := range clients {
		u := strings.Replace(srv.URL, "http", "ws", 1) + "/?user=u" + string(rune('a'+i%10))
		ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {srv.URL}}})
		if err != nil {
			b.Fatal(err)
		}
		defer ws.CloseNow()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, rd, err := ws.Reader(ctx)
				if err != nil {
					return
				}
				var buf [1024]byte
				for {
					if _, err := rd.Read(buf[:]); err != nil {
						break
					}
				}
				got[i].Add(1)
			}
		}()
	}
	slowest := func() int64 {
		m := got[0].Load()
		for i := range got {
			m = min(m, got[i].Load())
		}
		return m
	}
	// Everyone has hello (and presence events) before timing starts.
	for time.Sleep(100 * time.Millisecond); slowest() == 0; time.Sleep(10 * time.Millisecond) {
	}
	time.Sleep(200 * time.Millisecond)
	base := make([]int64, clients)
	for i := range got {
		base[i] = got[i].Load()
	}
	behind := func() int64 {
		var m int64 = 1 << 62
		for i := range got {
			m = min(m, got[i].Load()-base[i])
		}
		return m
	}
	data := json.RawMessage(`{"channel":"c1","seq":1,"author":"u1","text":"see you at dinner, the bus was late again so I will be home at seven"}`)
	b.ResetTimer()
	for i := range b.N {
		for int64(i)-behind() > ahead {
			time.Sleep(100 * time.Microsecond)
		}
		h.Publish(hub.Event{ID: uint64(i + 1), Type: "message.new", Channel: "c1", Data: data})
	}
	for behind() < int64(b.N) && ctx.Err() == nil {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*clients/b.Elapsed().Seconds(), "deliveries/s")
	cancel()
}
