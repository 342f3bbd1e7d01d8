// Package certs gives Hearth automatic TLS: one *tls.Config whose
// certificates are obtained, stored and renewed without a person touching
// them.
//
// It runs a small local certificate authority (an ECDSA P-256 key made on
// first run, kept in storage and never handed out; only its certificate is,
// for devices to trust) that issues short-lived leaf certificates for the
// appliance's LAN names (hearth.local, localhost, LAN addresses, the tailnet
// name). The CA certificate carries name constraints, so a copied key could
// not impersonate sites outside the home's own names. In acme mode a public
// domain is certified by an ACME CA (HTTP-01 on the plain-HTTP port,
// TLS-ALPN-01 on the HTTPS port) while the local names keep their local
// certificates; in tailnet mode the *.ts.net name is served from a hook the
// tailnet package supplies, with the local CA as fallback.
//
// Certificates, keys, the ACME account and locks live in a KV, a four-method
// key-value interface the caller backs with its own store; Storage adapts it
// to certmagic's storage contract, locking included. Package certstest holds
// an in-memory KV, the storage conformance test and an in-process Pebble ACME
// server for tests.
//
// It is the only package that imports certmagic (and certmagic's zap logger,
// which it bridges to log/slog). It imports no other Hearth package and hands
// back standard types: *tls.Config, http.Handler and PEM bytes.
package certs
