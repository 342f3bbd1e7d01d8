package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
)

// apiCSP is the policy for every response that is not the app page: it
// allows nothing, so a response rendered as a document cannot run anything.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func (s *Server) securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=(), payment=(), usb=()")
	h.Set("Content-Security-Policy", apiCSP)
	if s.cfg.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// pageCSP is the policy for the app page: scripts only from this origin and
// carrying this response's nonce, no inline script or style.
func pageCSP(nonce string) string {
	return "default-src 'self'; script-src 'self' 'nonce-" + nonce + "'; style-src 'self'; " +
		"img-src 'self' data: blob:; connect-src 'self'; media-src 'self' blob:; worker-src 'self'; " +
		"manifest-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}
