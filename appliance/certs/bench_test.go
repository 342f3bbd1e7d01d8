package certs_test

// Benchmarks of a TLS handshake with a certificate from the local CA: what
// every new connection from a device costs. `make bench` runs them.

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/hearth-home/hearth/appliance/certs"
)

// BenchmarkHandshake measures one full TLS 1.3 handshake (no session
// resumption) as hearth.local with an ECDSA P-256 leaf from the local CA,
// the client verifying the chain against the CA: over loopback TCP (dial,
// handshake, close) and in memory (the CPU cost of both ends alone). The
// reference serves the same certificate from a plain tls.Config, so the
// ratio to it is what certificate selection through certmagic costs.
func BenchmarkHandshake(b *testing.B) {
	// Logging at Info, as in production: certmagic's per-handshake Debug
	// lines are dropped before they are formatted.
	m := startManager(b, certs.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	client := &tls.Config{ServerName: "hearth.local", RootCAs: caPool(b, m)}
	server := m.TLSConfig()
	leaf, err := server.GetCertificate(&tls.ClientHelloInfo{ServerName: "hearth.local"})
	if err != nil {
		b.Fatal(err)
	}
	static := &tls.Config{Certificates: []tls.Certificate{*leaf}, MinVersion: tls.VersionTLS12}

	b.Run("loopback", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					tc := tls.Server(c, server)
					tc.Handshake()
					tc.Close()
				}()
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", ln.Addr().String(), client)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})

	inMemory := func(server *tls.Config) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cc, sc := net.Pipe()
				done := make(chan error, 1)
				go func() { done <- tls.Server(sc, server).Handshake() }()
				if err := tls.Client(cc, client).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				cc.Close()
				sc.Close()
			}
		}
	}
	b.Run("in-memory", inMemory(server))
	b.Run("in-memory-reference", inMemory(static))
}
