package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/hearth-home/hearth/appliance/certs"
	"github.com/hearth-home/hearth/appliance/certs/certstest"
)

// Serve HTTPS for hearth.local with the local CA, and the CA certificate on
// the plain-HTTP side for devices to install.
func Example() {
	m, err := certs.New(certs.Config{
		KV:    certstest.NewMemKV(), // Hearth passes its bbolt store here
		Names: []string{"hearth.local", "localhost", "127.0.0.1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if err := m.Start(context.Background()); err != nil {
		log.Fatal(err)
	}

	// The HTTPS server.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{
		TLSConfig: m.TLSConfig(),
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from Hearth") }),
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()

	// The plain-HTTP side would serve m.CACertPEM() as /ca.crt and
	// certs.MobileConfig(m.CACertPEM(), "hearth") as /ca.mobileconfig,
	// wrapped in m.HTTPChallengeHandler.

	// A device that installed /ca.crt.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(m.CACertPEM())
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "hearth.local", RootCAs: roots})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	fmt.Println("trusted certificate for", leaf.DNSNames)
	fmt.Println("ready:", m.Status().Ready)
	// Output:
	// trusted certificate for [hearth.local]
	// ready: true
}
