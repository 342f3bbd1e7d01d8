package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// centrifugoTarget speaks Centrifugo's JSON client protocol (v2) over
// WebSocket and publishes through its HTTP API.
type centrifugoTarget struct {
	base    string
	apiKey  string
	secret  string
	channel string
}

// centrifugoSettings are the keys of the generated Centrifugo config file
// that chatload reads back.
type centrifugoSettings struct {
	Secret string `json:"token_hmac_secret_key"`
	APIKey string `json:"api_key"`
}

func (t *centrifugoTarget) token(user string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": user, "exp": time.Now().Add(time.Hour).Unix()})
	msg := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(t.secret))
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// reply waits for the reply with id, answering pings meanwhile.
func (t *centrifugoTarget) reply(ctx context.Context, ws *websocket.Conn, id int) (json.RawMessage, error) {
	for range 100 {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var r struct {
				ID    int             `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &r) != nil || r.ID != id {
				if err := t.pong(ctx, ws, line); err != nil {
					return nil, err
				}
				continue
			}
			if len(r.Error) > 0 {
				return nil, fmt.Errorf("command %d refused: %s", id, r.Error)
			}
			return line, nil
		}
	}
	return nil, fmt.Errorf("no reply to command %d", id)
}

func (t *centrifugoTarget) dial(ctx context.Context, i int) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(t.base, "http")+"/connection/websocket", &websocket.DialOptions{
		HTTPClient: httpClient,
		HTTPHeader: http.Header{"Origin": {t.base}},
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxFrameBytes)
	fail := func(err error) (*websocket.Conn, error) { ws.CloseNow(); return nil, err }
	connect, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": t.token(fmt.Sprintf("load%03d", i%10+1)), "name": "chatload"}})
	if err := ws.Write(ctx, websocket.MessageText, connect); err != nil {
		return fail(err)
	}
	if _, err := t.reply(ctx, ws, 1); err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	sub, _ := json.Marshal(map[string]any{"id": 2, "subscribe": map[string]string{"channel": t.channel}})
	if err := ws.Write(ctx, websocket.MessageText, sub); err != nil {
		return fail(err)
	}
	if _, err := t.reply(ctx, ws, 2); err != nil {
		return fail(fmt.Errorf("subscribe: %w", err))
	}
	return ws, nil
}

func (t *centrifugoTarget) publish(ctx context.Context, text, _ string) error {
	var res struct {
		Error json.RawMessage `json:"error"`
	}
	_, err := call(ctx, "POST", t.base+"/api/publish", http.Header{"X-API-Key": {t.apiKey}},
		map[string]any{"channel": t.channel, "data": map[string]string{"text": text}}, &res, http.StatusOK)
	if err == nil && len(res.Error) > 0 {
		err = fmt.Errorf("publish refused: %s", res.Error)
	}
	return err
}

// pong answers Centrifugo's ping (an empty command, {}) with {}.
func (t *centrifugoTarget) pong(ctx context.Context, ws *websocket.Conn, frame []byte) error {
	for line := range bytes.SplitSeq(frame, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == "{}" {
			return ws.Write(ctx, websocket.MessageText, []byte("{}"))
		}
	}
	return nil
}

func (t *centrifugoTarget) metrics(context.Context) map[string]float64 { return nil }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// centrifugoConfig writes a Centrifugo v5 configuration for one channel
// namespace-less channel that clients may subscribe to, on 127.0.0.1 only,
// with usage statistics off (it would otherwise report to its vendor).
func centrifugoConfig(args []string) error {
	fs := flag.NewFlagSet("centrifugo-config", flag.ContinueOnError)
	port := fs.Int("port", 0, "port on 127.0.0.1")
	out := fs.String("out", "", "config file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port <= 0 || *port > 65535 || *out == "" {
		return errors.New("centrifugo-config needs -port and -out")
	}
	cfg := map[string]any{
		"address":                    "127.0.0.1",
		"port":                       strconv.Itoa(*port),
		"token_hmac_secret_key":      randomHex(32),
		"api_key":                    randomHex(32),
		"allowed_origins":            []string{fmt.Sprintf("http://127.0.0.1:%d", *port)},
		"allow_subscribe_for_client": true,
		"health":                     true,
		"usage_stats_disable":        true,
		"log_level":                  "error",
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o600)
}
