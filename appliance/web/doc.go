// Package web owns Hearth's HTTP surface: one http.Handler for the embedded
// web app, the JSON API under /api/v1 and the realtime WebSocket upgrade
// point. It authenticates requests (session cookie or bearer token; a file
// transfer's guest ticket only for the WebSocket and TURN credentials), checks
// CSRF on state changes, sets the security headers (CSP with a per-response
// nonce, HSTS under TLS), limits request bodies, and renders every handler
// error through one function as {"error": {"code", "message"}}.
package web
