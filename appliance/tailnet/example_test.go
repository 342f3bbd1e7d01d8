package tailnet_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/hearth-home/hearth/appliance/tailnet"
)

// Serving Hearth on the tailnet: join, serve HTTPS on the node's listener
// with the tailnet's certificate, and sign members in by tailnet identity.
func Example() {
	n, err := tailnet.New(tailnet.Config{
		Hostname:         "hearth",
		Dir:              "/var/lib/hearth/tailnet",
		AuthKeyFile:      "/etc/hearth/tailnet.key",
		FetchCertificate: true, // TLS mode tailnet
		Logger:           slog.Default(),
	})
	if err != nil {
		return // bad configuration, or a build without the tailnet
	}
	defer n.Close()

	// Do not hold up the LAN for the tailnet: give it a few seconds and
	// carry on. Status keeps telling how it goes (login URL, approval).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); errors.Is(err, tailnet.ErrAuth) {
		slog.Error("tailnet", "err", err) // the key was refused; nothing listens
		return
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/tailnet", func(w http.ResponseWriter, r *http.Request) {
		id, err := n.IdentifyRequest(r)
		if err != nil || !id.IsPerson() {
			http.Error(w, "not a member's device on the tailnet", http.StatusForbidden)
			return
		}
		// Look id.LoginName up among the accounts the admin mapped, and
		// start a session.
	})
	ln, err := n.Listen("tcp", ":443")
	if err != nil {
		return
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(tls.NewListener(ln, n.TLSConfig()))
}
