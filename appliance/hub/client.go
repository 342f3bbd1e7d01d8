package hub

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// ClientReadLimit bounds a message a ClientConn reads (a transfer offer
// lists up to 10,000 file names).
const ClientReadLimit = 4 << 20

// ClientConn is the client side of the realtime WebSocket, for programs
// (the hearth CLI) rather than browsers. Receive must be called in a loop:
// it also answers the server's keepalive pings.
type ClientConn struct {
	ws *websocket.Conn
}

// Dial opens the realtime connection at url (http(s):// or ws(s)://, the
// path /api/v1/ws) with header (Authorization: Bearer …) and, for
// https, tlsConfig (nil: the system's roots). No Origin is sent: the
// connection is not a browser's.
func Dial(ctx context.Context, url string, header http.Header, tlsConfig *tls.Config) (*ClientConn, error) {
	switch {
	case strings.HasPrefix(url, "http://"):
		url = "ws://" + strings.TrimPrefix(url, "http://")
	case strings.HasPrefix(url, "https://"):
		url = "wss://" + strings.TrimPrefix(url, "https://")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: http.ProxyFromEnvironment}}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client, HTTPHeader: header})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("open realtime connection: %s: %w", resp.Status, err)
		}
		return nil, fmt.Errorf("open realtime connection: %w", err)
	}
	ws.SetReadLimit(ClientReadLimit)
	return &ClientConn{ws: ws}, nil
}

// Send writes one message.
func (c *ClientConn) Send(ctx context.Context, env Envelope) error {
	b, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode %s: %w", env.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("send %s: %w", env.Type, err)
	}
	return nil
}

// Receive reads the next message.
func (c *ClientConn) Receive(ctx context.Context) (Envelope, error) {
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return Envelope{}, fmt.Errorf("read realtime connection: %w", err)
	}
	if typ != websocket.MessageText {
		return Envelope{}, fmt.Errorf("read realtime connection: a binary message")
	}
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Envelope{}, fmt.Errorf("read realtime connection: %w", err)
	}
	return env, nil
}

// Close closes the connection normally.
func (c *ClientConn) Close() error {
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

// CloseNow drops the connection without the closing handshake.
func (c *ClientConn) CloseNow() error { return c.ws.CloseNow() }
