// Package hub owns the realtime WebSocket: exactly one per signed-in client
// at /api/v1/ws, carrying typed JSON envelopes ({"type": ..., "id": ...}).
// It checks the Origin, keeps connections alive with pings, bounds each
// client's send queue and message rate, and closes every connection with a
// going-away frame on shutdown or when the client's session is revoked.
// A guest connection (Client.Guest, a file transfer's guest) is no one's
// presence, gets no replay, and receives only events sent to its session.
// ClientConn (Dial) is the client side, for programs such as `hearth send`
// and `hearth receive`.
package hub
