package discovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/hearth-home/hearth/appliance/discovery"
)

// The wiring point runs an Announcer next to the HTTPS server and shows its
// Status on the admin page; a failure to announce never stops Hearth.
func ExampleAnnouncer() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := discovery.New(discovery.Config{
		Name:    "hearth", // from --name
		Version: "1.0.0",
		Port:    8443, // the HTTPS port
		Logger:  logger.With("component", "discovery"),
	})
	if err != nil {
		logger.Error("bad mdns settings", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		time.Sleep(3 * time.Second)
		st := a.Status()
		fmt.Printf("%s: %s at %v %s\n", st.State, st.Host, st.Addrs, st.LastError)
	}()
	_ = a.Run(ctx) // until Ctrl-C; sends goodbyes on the way out
}

// `hearth doctor` lists the Hearths on the LAN and checks the name.
func ExampleBrowse() {
	ctx := context.Background()
	found, err := discovery.Browse(ctx, 2*time.Second)
	if err != nil {
		fmt.Println("cannot browse:", err)
		return
	}
	for _, s := range found {
		fmt.Println(s.Instance, s.URL(), s.Addrs, "version", s.Text["v"])
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := discovery.Resolve(rctx, "hearth.local")
	fmt.Println(addrs, err)
}
