package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/qrcode"
	"github.com/hearth-home/hearth/appliance/transfer/peer"
	"github.com/pion/webrtc/v4"
	"golang.org/x/term"
)

func newSendCommand() *command {
	return &command{
		name: "send", args: "FILE|DIR...", summary: "send files to a member's devices, or to a guest by code",
		long: "With --to USER every online device of that member is offered the files; the first to accept gets them.\n" +
			"With --code a pairing code, a link and a QR code are printed for someone without an account.\n" +
			"Folders are sent with their relative paths. Files go straight between the devices (WebRTC), through\n" +
			"the appliance's relay only when needed (always with --relay-only). A dropped connection resumes.\n" +
			"Exits 0 only when every file arrived and matched its SHA-256.",
		flags: func(fs *flag.FlagSet) {
			clientFlags(fs)
			fs.String("to", "", "the member to send to (account name)")
			fs.Bool("code", false, "make a pairing code for a guest instead")
			fs.Bool("relay-only", false, "use the appliance's TURN relay only (hides both sides' addresses)")
			fs.Bool("offline", false, "when the member has no device online, leave the files as a direct message")
		},
		run: runSend,
	}
}

func flagBool(fs *flag.FlagSet, name string) bool { return fs.Lookup(name).Value.String() == "true" }
func flagString(fs *flag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// collect lists the files to send: files as their base name, folders
// walked with names relative to the folder's parent ("photos/a.jpg").
func collect(args []string) ([]peer.Source, error) {
	var out []peer.Source
	add := func(path, name string, info fs.FileInfo) {
		typ := mime.TypeByExtension(filepath.Ext(name))
		out = append(out, peer.Source{
			Info: peer.FileInfo{Name: name, Size: info.Size(), Type: typ, MTime: info.ModTime().UnixMilli()},
			Open: func() (io.ReadCloser, error) { return os.Open(path) },
		})
	}
	for _, a := range args {
		info, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if !info.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file", a)
			}
			add(a, filepath.Base(a), info)
			continue
		}
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		parent := filepath.Dir(abs)
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil // folders are implied by names; links and devices are skipped
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(parent, p)
			if err != nil {
				return err
			}
			add(p, filepath.ToSlash(rel), info)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read folder %s: %w", a, err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("nothing to send: the folders are empty")
	}
	if len(out) > peer.MaxFiles {
		return nil, fmt.Errorf("%d files; a transfer takes at most %d (send a zip of the folder)", len(out), peer.MaxFiles)
	}
	return out, nil
}

// session is a connected realtime client.
type session struct {
	r   *remote
	sig *peer.Signaling
}

func openSession(ctx context.Context, r *remote, token string) (*session, error) {
	conn, err := hub.Dial(ctx, r.wsURL(), http.Header{"Authorization": {"Bearer " + token}, "User-Agent": {userAgent}}, r.tls)
	if err != nil {
		return nil, err
	}
	sig := peer.NewSignaling(conn)
	// The first event is the hello.
	if _, err := sig.Next(ctx, func(e hub.Envelope) bool { return e.Type == "hello" }); err != nil {
		sig.Close()
		return nil, err
	}
	return &session{r: r, sig: sig}, nil
}

// iceServers asks the appliance for TURN credentials.
func (s *session) iceServers(ctx context.Context, header http.Header) ([]webrtc.ICEServer, error) {
	var cred struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	}
	err := s.r.do(ctx, "GET", "/api/v1/turn/credentials", header, nil, &cred)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "no_relay" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get relay credentials: %w", err)
	}
	if len(cred.URLs) == 0 {
		return nil, nil
	}
	return []webrtc.ICEServer{{URLs: cred.URLs, Username: cred.Username, Credential: cred.Credential}}, nil
}

// connConfig is the WebRTC setup for the appliance r.
func connConfig(r *remote, ice []webrtc.ICEServer, relayOnly bool) peer.ConnConfig {
	cc := peer.ConnConfig{ICEServers: ice, RelayOnly: relayOnly}
	if u, err := url.Parse(r.base); err == nil {
		if h := u.Hostname(); h == "localhost" || strings.HasPrefix(h, "127.") {
			cc.LoopbackOnly = true // the appliance runs here, and so does the other side
		}
	}
	return cc
}

// waitFor returns the first event of the given types about id, from the
// transfer's own events or (before the subscription) the others.
func waitFor(ctx context.Context, sig *peer.Signaling, sub <-chan peer.Event, id string, types ...string) (peer.Event, error) {
	is := func(t string) bool {
		for _, x := range types {
			if x == t {
				return true
			}
		}
		return false
	}
	other := make(chan hub.Envelope, 1)
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		env, err := sig.Next(octx, func(e hub.Envelope) bool { return is(e.Type) && strings.Contains(string(e.Data), `"`+id+`"`) })
		if err == nil {
			other <- env
		}
		close(other)
	}()
	for {
		select {
		case ev := <-sub:
			if is(ev.Type) {
				return ev, nil
			}
		case env, ok := <-other:
			if !ok {
				if ctx.Err() != nil {
					return peer.Event{}, ctx.Err()
				}
				return peer.Event{}, errors.New("the realtime connection closed")
			}
			return peer.Event{Type: env.Type, Data: env.Data}, nil
		case <-ctx.Done():
			return peer.Event{}, ctx.Err()
		}
	}
}

func runSend(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	to, code := flagString(fs, "to"), flagBool(fs, "code")
	if len(args) == 0 {
		return usagef("send takes the files or folders to send")
	}
	if (to == "") == !code {
		return usagef("send needs --to USER or --code")
	}
	files, err := collect(args)
	if err != nil {
		return err
	}
	r, creds, err := connect(env, fs, true)
	if err != nil {
		return err
	}
	s, err := openSession(ctx, r, creds.Token)
	if err != nil {
		return err
	}
	defer s.sig.Close()

	offer := map[string]any{"files": offerFiles(files), "ref": peer.Nonce()[:16]}
	var toID string
	if code {
		offer["guest"] = true
	} else {
		if toID, err = findUser(ctx, r, to); err != nil {
			return err
		}
		offer["to_user"] = toID
	}
	if flagBool(fs, "relay-only") {
		offer["relay_only"] = true
	}
	ref := offer["ref"].(string)
	if err := s.sig.Send(ctx, "transfer.offer", offer); err != nil {
		return err
	}
	created, err := s.sig.Next(ctx, func(e hub.Envelope) bool {
		return (e.Type == "transfer.created" || e.Type == "error") && strings.Contains(string(e.Data), ref)
	})
	if err != nil {
		return err
	}
	if serr := peer.AsServerError(created); serr != nil {
		var se *peer.ServerError
		if errors.As(serr, &se) && se.Code == "offline" {
			if !flagBool(fs, "offline") {
				return fmt.Errorf("%s has no device online; run again with --offline to leave the files on the appliance as a direct message", to)
			}
			return sendOffline(ctx, env, r, toID, to, files)
		}
		return fmt.Errorf("offer refused: %w", serr)
	}
	var c struct {
		ID      string    `json:"id"`
		Code    string    `json:"code"`
		Expires time.Time `json:"expires"`
	}
	if err := json.Unmarshal(created.Data, &c); err != nil || c.ID == "" {
		return errors.New("the appliance's answer to the offer has no transfer id")
	}
	sub := s.sig.Subscribe(c.ID)
	if code {
		link := r.base + "/t/" + c.Code
		if u, err := url.Parse(r.base); err == nil {
			link = "https://" + u.Host + "/t/" + c.Code
			if u.Scheme == "http" {
				link = r.base + "/t/" + c.Code
			}
		}
		shown := c.Code
		if len(shown) == 10 {
			shown = shown[:5] + "-" + shown[5:]
		}
		qr, _ := qrcode.Terminal(link)
		fmt.Fprintf(env.Stdout, "Pairing code: %s\nLink: %s\n%s\nOn the other device: open the link, scan the code, or run `hearth receive %s`.\n"+
			"The code works once, until %s.\n", shown, link, qr, shown, c.Expires.Local().Format("15:04"))
	} else {
		fmt.Fprintf(env.Stderr, "Offered %d file(s) to %s; waiting for a device to accept…\n", len(files), to)
	}
	ev, err := waitFor(ctx, s.sig, sub, c.ID, "transfer.accepted", "transfer.declined", "transfer.cancelled", "transfer.gone")
	if err != nil {
		if ctx.Err() != nil {
			s.sig.Send(context.Background(), "transfer.cancel", map[string]any{"id": c.ID, "reason": "cancelled"})
		}
		return err
	}
	var acc struct {
		Peer struct {
			Name   string `json:"name"`
			Device string `json:"device"`
		} `json:"peer"`
		Reason string `json:"reason"`
	}
	json.Unmarshal(ev.Data, &acc)
	switch ev.Type {
	case "transfer.declined":
		return fmt.Errorf("%s declined the files", orName(acc.Peer.Name, "the receiver"))
	case "transfer.cancelled", "transfer.gone":
		return fmt.Errorf("the transfer ended: %s", orName(acc.Reason, "cancelled"))
	}
	fmt.Fprintf(env.Stderr, "%s accepted on %s.\n", orName(acc.Peer.Name, "The guest"), orName(acc.Peer.Device, "their device"))
	accepted := time.Now()
	ice, err := s.iceServers(ctx, nil)
	if err != nil {
		return err
	}
	relayOnly := flagBool(fs, "relay-only") || code
	view := newProgressView(env, "sending", files)
	var firstByte sync.Once
	cut, _ := strconv.ParseInt(env.Getenv("HEARTH_TEST_CUT_AFTER"), 10, 64)
	sender, err := peer.NewSender(peer.SenderConfig{Files: files, CutAfter: cut, Progress: func(p peer.Progress) {
		firstByte.Do(func() { view.note("first byte %d ms after accept", time.Since(accepted).Milliseconds()) })
		view.update(p)
	}})
	if err != nil {
		return err
	}
	cfg := sessionConfig(env, s, c.ID, sub, connConfig(r, ice, relayOnly), view)
	runErr := peer.RunSender(ctx, cfg, sender)
	view.finish()
	return report(ctx, env, s, c.ID, runErr, sender.Results(), sender.Acked(), names(files))
}

func sessionConfig(env *Env, s *session, id string, sub <-chan peer.Event, cc peer.ConnConfig, view *progressView) peer.SessionConfig {
	return peer.SessionConfig{ID: id, Conn: cc, Send: s.sig.Send, Events: sub,
		OnConnect: func(c *peer.Conn) {
			view.note("Verification: %s (compare with the other screen); path %s", c.Verification(), c.SelectedPair())
		},
		OnLost: func(err error) { view.note("connection lost (%v); resuming…", err) },
	}
}

func names(files []peer.Source) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Info.Name
	}
	return out
}

// report prints each file's outcome, records the result on the appliance
// and returns an error unless every file is ok.
func report(ctx context.Context, env *Env, s *session, id string, runErr error, results []peer.FileResult, bytes int64, names []string) error {
	ok := 0
	for i, res := range results {
		switch res {
		case peer.FileOK, peer.FileSkipped:
			ok++
		case peer.FileBad:
			fmt.Fprintf(env.Stderr, "FAILED %s: its SHA-256 did not match; the file was discarded\n", names[i])
		}
	}
	result := "done"
	switch {
	case errors.Is(runErr, context.Canceled), errors.Is(runErr, peer.ErrCancelled):
		result = "cancelled"
	case runErr != nil || ok != len(results):
		result = "failed"
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if runErr != nil && !errors.Is(runErr, peer.ErrCancelled) && !errors.Is(runErr, peer.ErrGone) {
		s.sig.Send(rctx, "transfer.cancel", map[string]any{"id": id, "reason": result})
	}
	s.sig.Send(rctx, "transfer.result", map[string]any{"id": id, "result": result, "bytes": bytes, "files": ok})
	if runErr != nil {
		return fmt.Errorf("transfer failed after %d of %d files: %w", ok, len(results), runErr)
	}
	if ok != len(results) {
		return fmt.Errorf("%d of %d files failed verification", len(results)-ok, len(results))
	}
	fmt.Fprintf(env.Stdout, "All %d file(s) verified (SHA-256).\n", ok)
	return nil
}

func orName(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func offerFiles(files []peer.Source) []map[string]any {
	out := make([]map[string]any, len(files))
	for i, f := range files {
		out[i] = map[string]any{"name": f.Info.Name, "size": f.Info.Size, "type": f.Info.Type}
	}
	return out
}

// findUser returns the id of the member called name.
func findUser(ctx context.Context, r *remote, name string) (string, error) {
	var dir struct {
		Users []struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"display_name"`
		} `json:"users"`
	}
	if err := r.do(ctx, "GET", "/api/v1/users", nil, nil, &dir); err != nil {
		return "", fmt.Errorf("list members: %w", err)
	}
	for _, u := range dir.Users {
		if strings.EqualFold(u.Name, name) || strings.EqualFold(u.DisplayName, name) {
			return u.ID, nil
		}
	}
	return "", fmt.Errorf("no member is called %q", name)
}

// sendOffline leaves the files as attachments of one direct message
// (PROTOCOL.md section 5).
func sendOffline(ctx context.Context, env *Env, r *remote, userID, name string, files []peer.Source) error {
	var dm struct {
		Channel struct {
			ID string `json:"id"`
		} `json:"channel"`
	}
	if err := r.do(ctx, "POST", "/api/v1/dms", nil, map[string]any{"members": []string{userID}}, &dm); err != nil {
		return fmt.Errorf("open the direct messages with %s: %w", name, err)
	}
	var ids, listed []string
	for _, f := range files {
		rc, err := f.Open()
		if err != nil {
			return err
		}
		var up struct {
			Attachment struct {
				ID string `json:"id"`
			} `json:"attachment"`
		}
		fmt.Fprintf(env.Stderr, "uploading %s (%s)…\n", f.Info.Name, humanBytes(f.Info.Size))
		err = r.doRaw(ctx, "POST", "/api/v1/channels/"+dm.Channel.ID+"/attachments?name="+url.QueryEscape(f.Info.Name), nil,
			orName(f.Info.Type, "application/octet-stream"), rc, &up)
		rc.Close()
		if err != nil {
			return fmt.Errorf("upload %s: %w", f.Info.Name, err)
		}
		ids = append(ids, up.Attachment.ID)
		listed = append(listed, f.Info.Name)
	}
	text := fmt.Sprintf("Sent you %d file(s) while you were away: %s", len(files), strings.Join(listed, ", "))
	if err := r.do(ctx, "POST", "/api/v1/channels/"+dm.Channel.ID+"/messages", nil,
		map[string]any{"text": text, "attachments": ids, "key": peer.Nonce()}, nil); err != nil {
		return fmt.Errorf("post the message: %w", err)
	}
	fmt.Fprintf(env.Stdout, "%s is offline: left %d file(s) in your direct messages with them.\n", name, len(files))
	return nil
}

// progressView draws progress on stderr: a bar redrawn in place on a
// terminal, a line every few seconds otherwise.
type progressView struct {
	w     io.Writer
	tty   bool
	verb  string
	names []string

	mu      sync.Mutex
	last    time.Time
	file    int
	drawn   bool
	samples []sample
}

type sample struct {
	at    time.Time
	bytes int64
}

func newProgressView(env *Env, verb string, files []peer.Source) *progressView {
	v := &progressView{w: env.Stderr, verb: verb, names: names(files), file: -1}
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.tty = true
	}
	return v
}

func (v *progressView) setNames(names []string) {
	v.mu.Lock()
	v.names = names
	v.mu.Unlock()
}

// note prints a line of its own.
func (v *progressView) note(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.drawn {
		fmt.Fprint(v.w, "\r\x1b[K")
	}
	fmt.Fprintf(v.w, format+"\n", args...)
	v.drawn = false
}

func (v *progressView) update(p peer.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	every := 2 * time.Second
	if v.tty {
		every = 100 * time.Millisecond
	}
	newFile := p.File != v.file
	end := p.Bytes == p.Total || p.FileBytes == p.FileSize
	if !newFile && !end && now.Sub(v.last) < every {
		return
	}
	if !v.tty && !newFile && !(now.Sub(v.last) >= every) {
		return
	}
	v.file, v.last = p.File, now
	v.samples = append(v.samples, sample{now, p.Bytes})
	for len(v.samples) > 2 && now.Sub(v.samples[0].at) > 5*time.Second {
		v.samples = v.samples[1:]
	}
	var speed float64
	if s0 := v.samples[0]; now.Sub(s0.at) > 200*time.Millisecond && p.Bytes >= s0.bytes {
		speed = float64(p.Bytes-s0.bytes) / now.Sub(s0.at).Seconds()
	}
	eta := "-"
	if speed > 0 {
		eta = time.Duration(float64(p.Total-p.Bytes) / speed * float64(time.Second)).Round(time.Second).String()
	}
	name := ""
	if p.File < len(v.names) {
		name = v.names[p.File]
	}
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Bytes) / float64(p.Total)
	}
	if v.tty {
		const width = 24
		filled := int(pct / 100 * width)
		bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
		fmt.Fprintf(v.w, "\r\x1b[K%s %5.1f%%  %s %s/%s · total %s/%s · %s/s · %s left",
			bar, pct, clip(name, 30), humanBytes(p.FileBytes), humanBytes(p.FileSize), humanBytes(p.Bytes), humanBytes(p.Total),
			humanBytes(int64(speed)), eta)
		v.drawn = true
		return
	}
	fmt.Fprintf(v.w, "%s %s: %s of %s; total %s of %s (%.0f%%), %s/s, %s left\n", v.verb, name,
		humanBytes(p.FileBytes), humanBytes(p.FileSize), humanBytes(p.Bytes), humanBytes(p.Total), pct, humanBytes(int64(speed)), eta)
}

func (v *progressView) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.drawn {
		fmt.Fprintln(v.w)
		v.drawn = false
	}
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return "…" + string(r[len(r)-n+1:])
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
