package proof_test

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// realtimeTypes finds the client message types the realtime handlers
// switch on: every `switch typ` or `switch env.Type` in a function of the
// appliance's code that takes a json.RawMessage or an Envelope.
func realtimeTypes(t *testing.T) map[string]string {
	t.Helper()
	root := ".." // appliance/
	found := map[string]string{}
	byDir := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.Contains(p, "/internal/") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, files := range byDir {
		consts := map[string]string{}
		for _, f := range files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
								consts[n.Name], _ = strconv.Unquote(bl.Value)
							}
						}
					}
				}
			}
		}
		for _, f := range files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil || !takesMessage(fn) {
					continue
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					sw, ok := n.(*ast.SwitchStmt)
					if !ok || !typeTag(sw.Tag) {
						return true
					}
					for _, c := range sw.Body.List {
						for _, e := range c.(*ast.CaseClause).List {
							var v string
							switch e := e.(type) {
							case *ast.BasicLit:
								v, _ = strconv.Unquote(e.Value)
							case *ast.Ident:
								v = consts[e.Name]
							}
							if v != "" {
								found[v] = filepath.Join("appliance", strings.TrimPrefix(dir, "../"))
							}
						}
					}
					return true
				})
			}
		}
	}
	return found
}

// takesMessage: a function given a client message (an Envelope, or a
// type name beside its data).
func takesMessage(fn *ast.FuncDecl) bool {
	typ, data := false, false
	for _, p := range fn.Type.Params.List {
		switch tt := p.Type.(type) {
		case *ast.SelectorExpr:
			data = data || tt.Sel.Name == "RawMessage"
		case *ast.ArrayType:
			if id, ok := tt.Elt.(*ast.Ident); ok && id.Name == "byte" {
				data = true
			}
		case *ast.Ident:
			if tt.Name == "Envelope" {
				return true
			}
			for _, n := range p.Names {
				typ = typ || (n.Name == "typ" && tt.Name == "string")
			}
		}
	}
	return typ && data
}

func typeTag(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "typ"
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && x.Name == "env" && e.Sel.Name == "Type"
	}
	return false
}

// rtRule is how a realtime message type is authorized: the data sent, and
// what each connected role must get back.
type rtRule struct {
	data string // {private} and {voice} stand for the private channels' IDs
	// outsider must be refused (an error event); members and admins not
	// with forbiddenCode. Empty outsiderCode: anything goes for outsiders
	// too (a type about oneself).
	scoped bool
	reply  string // a reply type every connected role gets (ping → pong)
	// party: members are refused too (they are not a party either), but
	// not as forbidden.
	party     bool
	anyAnswer bool // no rule beyond "answers" (the input is malformed)
}

// realtimeAccess classifies every realtime message type; a type the
// handlers switch on but missing here fails the test.
var realtimeAccess = map[string]rtRule{
	"ping":         {data: `{}`, reply: "pong"},
	"presence":     {data: `{"state":"idle"}`},
	"typing":       {data: `{"channel":"{private}"}`, scoped: true},
	"voice.join":   {data: `{"room":"{voice}","sdp":"v=0"}`, scoped: true},
	"voice.leave":  {data: `{"room":"{voice}"}`, scoped: true},
	"voice.signal": {data: `{"room":"{voice}","type":"candidate","candidate":"x"}`, scoped: true},
	"voice.mute":   {data: `{"room":"{voice}","muted":true}`, scoped: true},
	"voice.deafen": {data: `{"room":"{voice}","deafened":true}`, scoped: true},
	"voice.floor":  {data: `{"room":"{voice}","action":"request"}`, scoped: true},
	"voice.mode":   {data: `{"room":"{voice}","one_talker":true}`, scoped: true},
	"voice.sync":   {data: `{}`},
	// Transfers: only their parties act on one; nobody is a party to an
	// unknown ID. Anyone signed in may offer (here a malformed offer).
	"transfer.offer":   {data: `{}`, anyAnswer: true},
	"transfer.accept":  {data: transferData, scoped: true, party: true},
	"transfer.decline": {data: transferData, scoped: true, party: true},
	"transfer.cancel":  {data: transferData, scoped: true, party: true},
	"transfer.signal":  {data: transferData, scoped: true, party: true},
	"transfer.resume":  {data: transferData, scoped: true, party: true},
	"transfer.result":  {data: transferData, scoped: true, party: true},
}

const transferData = `{"id":"nosuchtransfer","ts":{ts},"nonce":"{nonce}"}`

// rtConn is a realtime connection in a test.
type rtConn struct {
	ws  *websocket.Conn
	ctx context.Context
}

func dialRT(t *testing.T, base, cookie string) (*rtConn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	hdr := http.Header{"Origin": {base}}
	if ticket, ok := strings.CutPrefix(cookie, "bearer "); ok {
		hdr.Set("Authorization", "Bearer "+ticket)
	} else if cookie != "" {
		hdr.Set("Cookie", "hearth_session="+cookie)
	}
	ws, resp, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		t.Fatalf("dial realtime: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &rtConn{ws: ws, ctx: ctx}
	if typ, _ := c.read(t); typ != "hello" {
		t.Fatalf("first realtime message %q, want hello", typ)
	}
	return c, 101
}

func (c *rtConn) read(t *testing.T) (string, json.RawMessage) {
	t.Helper()
	_, b, err := c.ws.Read(c.ctx)
	if err != nil {
		t.Fatalf("realtime read: %v", err)
	}
	var env struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	json.Unmarshal(b, &env)
	return env.Type, env.Data
}

func (c *rtConn) send(t *testing.T, typ, data string) {
	t.Helper()
	if err := c.ws.Write(c.ctx, websocket.MessageText, []byte(`{"type":"`+typ+`","data":`+data+`}`)); err != nil {
		t.Fatalf("realtime write: %v", err)
	}
}

// exchange sends one message and returns what came back before the pong
// of a ping sent right after it (the hub runs a connection's messages in
// order).
func (c *rtConn) exchange(t *testing.T, typ, data string) (replies []string, errCodes []string, raw string) {
	t.Helper()
	c.send(t, typ, data)
	c.send(t, "ping", `{}`)
	pongs := 1
	if typ == "ping" {
		pongs = 2
	}
	for pongs > 0 {
		rt, d := c.read(t)
		raw += rt + string(d) + "\n"
		switch rt {
		case "pong":
			pongs--
			if pongs > 0 {
				replies = append(replies, rt)
			}
		case "error":
			var e struct {
				Code string `json:"code"`
			}
			json.Unmarshal(d, &e)
			errCodes = append(errCodes, e.Code)
		default:
			replies = append(replies, rt)
		}
	}
	return replies, errCodes, raw
}

// TestRealtimeAuthorization sends every realtime message type the
// handlers know as every role and checks the outcome its rule promises.
func TestRealtimeAuthorization(t *testing.T) {
	types := realtimeTypes(t)
	var names []string
	for typ := range types {
		names = append(names, typ)
		if _, ok := realtimeAccess[typ]; !ok {
			t.Errorf("realtime type %q (handled in %s) has no rule in realtimeAccess (realtime_test.go)", typ, types[typ])
		}
	}
	for typ := range realtimeAccess {
		if _, ok := types[typ]; !ok {
			t.Errorf("realtimeAccess lists %q, which no handler switches on", typ)
		}
	}
	sort.Strings(names)
	h := newHousehold(t, nil)
	short := startDaemon(t, map[string]string{"session-idle": "1s", "session-max": "1s"})
	setupAdmin(t, short.url, short.dir, "mum", pw)
	expired := short.signIn(t, "mum", pw)
	revoked := h.signIn(t, "kid", pw)
	if r := h.call("POST", "/api/v1/auth/logout", revoked, "{}"); r.status/100 != 2 {
		t.Fatalf("logout = %d %s", r.status, r.code)
	}
	time.Sleep(1100 * time.Millisecond)

	checks := 0
	// Without a live session there is no connection to send on.
	for role, base := range map[string]struct {
		url, cookie string
	}{"anonymous": {h.url, ""}, "revoked": {h.url, revoked.cookie}, "expired": {short.url, expired.cookie}} {
		if _, status := dialRT(t, base.url, base.cookie); status != 401 {
			t.Errorf("realtime connection as %s = %d, want 401", role, status)
		}
		checks += len(names)
	}
	conns := map[string]*rtConn{}
	for role, name := range map[string]string{"member": "kid", "non-member": "lodger", "admin": "mum"} {
		c, status := dialRT(t, h.url, h.signIn(t, name, pw).cookie)
		if c == nil {
			t.Fatalf("realtime connection as %s = %d", role, status)
		}
		conns[role] = c
	}
	guest, status := dialRT(t, h.url, "bearer "+h.guestTicket(t))
	if guest == nil {
		t.Fatalf("realtime connection as a paired guest = %d", status)
	}
	conns["guest"] = guest
	fill := strings.NewReplacer("{private}", h.private.ID, "{voice}", h.privateVoice.ID)
	for _, typ := range names {
		rule, ok := realtimeAccess[typ]
		if !ok {
			continue
		}
		for _, role := range []string{"member", "non-member", "admin", "guest"} {
			data := strings.NewReplacer("{ts}", strconv.FormatInt(time.Now().UnixMilli(), 10),
				"{nonce}", strconv.FormatInt(time.Now().UnixNano(), 36)+"-nonce").Replace(fill.Replace(rule.data))
			replies, codes, raw := conns[role].exchange(t, typ, data)
			checks++
			// A guest takes part in its own transfer only: everything
			// else it sends is refused (ping aside).
			if role == "guest" {
				if typ != "ping" && len(codes) == 0 {
					t.Errorf("%s as a guest: not refused (%q)", typ, raw)
				}
				if strings.Contains(raw, h.private.ID) && !strings.Contains(rule.data, "{") {
					t.Errorf("%s as a guest: the answer names the private channel", typ)
				}
				continue
			}
			switch {
			case rule.anyAnswer:
			case rule.party && len(codes) == 0:
				t.Errorf("%s as %s on someone else's transfer: not refused (%q)", typ, role, raw)
			case rule.reply != "" && !slices.Contains(replies, rule.reply):
				t.Errorf("%s as %s: no %s in %q", typ, role, rule.reply, raw)
			case rule.scoped && role == "non-member" && len(codes) == 0:
				t.Errorf("%s as an outsider to the channel: not refused (%q)", typ, raw)
			case rule.scoped && role != "non-member" && slices.Contains(codes, "forbidden"):
				t.Errorf("%s as %s: forbidden (%q)", typ, role, raw)
			case !rule.scoped && !rule.party && len(codes) > 0:
				t.Errorf("%s as %s: refused %q", typ, role, raw)
			}
			if role == "non-member" && (strings.Contains(raw, h.private.ID) || strings.Contains(raw, h.privateVoice.ID)) && !strings.Contains(rule.data, "{") {
				t.Errorf("%s as an outsider: the answer names the private channel: %q", typ, raw)
			}
		}
	}
	t.Logf("realtime types × roles checked: %d types, %d checks", len(names), checks)
}
