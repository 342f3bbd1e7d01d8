package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/transfer/peer"
)

func newReceiveCommand() *command {
	return &command{
		name: "receive", args: "[CODE]", summary: "receive files: as a guest with a pairing code, or as a member",
		long: "With a CODE (or its link, https://HOST/t/CODE) no login is needed: the command pairs as a guest.\n" +
			"Without one it waits, as the logged-in member, for files sent to you, shows who sends what and asks.\n" +
			"Files are written into --dir as NAME.hearth-part and renamed once their SHA-256 matches;\n" +
			"an existing name gets \" (2)\". Exits 0 only when every file arrived and matched.",
		flags: func(fs *flag.FlagSet) {
			clientFlags(fs)
			fs.String("dir", ".", "the folder to write the files into")
			fs.Bool("yes", false, "accept without asking")
			fs.Bool("trust-ca", false, "as a guest, trust the appliance's own CA without asking")
		},
		run: runReceive,
	}
}

// incoming is a transfer offered to this device.
type incoming struct {
	ID    string                        `json:"id"`
	From  struct{ Name, Device string } `json:"from"`
	Files []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"files"`
	Total     int64 `json:"total"`
	RelayOnly bool  `json:"relay_only"`
}

func runReceive(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
	if len(args) > 1 {
		return usagef("receive takes at most one pairing CODE")
	}
	dir := flagString(fs, "dir")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--dir %s is not a folder", dir)
	}
	p := newPrompter(env)
	var (
		s      *session
		in     incoming
		header http.Header
		err    error
	)
	if len(args) == 1 {
		s, in, header, err = pairAsGuest(ctx, env, fs, p, args[0])
	} else {
		s, in, err = waitForOffer(ctx, env, fs)
	}
	if err != nil {
		return err
	}
	defer s.sig.Close()
	fmt.Fprintf(env.Stderr, "%s (%s) sends %d file(s), %s:\n", orName(in.From.Name, "Someone"), orName(in.From.Device, "a device"),
		len(in.Files), humanBytes(in.Total))
	for i, f := range in.Files {
		if i == 20 {
			fmt.Fprintf(env.Stderr, "  … and %d more\n", len(in.Files)-20)
			break
		}
		fmt.Fprintf(env.Stderr, "  %s (%s)\n", f.Name, humanBytes(f.Size))
	}
	sub := s.sig.Subscribe(in.ID)
	if !flagBool(fs, "yes") {
		ok, err := p.yes("Accept?")
		if err != nil {
			return err
		}
		if !ok {
			s.sig.Send(ctx, "transfer.decline", map[string]any{"id": in.ID})
			return errors.New("declined")
		}
	}
	if err := s.sig.Send(ctx, "transfer.accept", map[string]any{"id": in.ID}); err != nil {
		return err
	}
	ice, err := s.iceServers(ctx, header)
	if err != nil {
		return err
	}
	var srcs []peer.Source
	for _, f := range in.Files {
		srcs = append(srcs, peer.Source{Info: peer.FileInfo{Name: f.Name, Size: f.Size}})
	}
	view := newProgressView(env, "receiving", srcs)
	var recv *peer.Receiver
	named := -1
	recv, err = peer.NewReceiver(peer.ReceiverConfig{Dir: dir, Progress: func(p peer.Progress) {
		if p.File != named { // show the names the files are written under
			named = p.File
			view.setNames(recv.Names())
		}
		view.update(p)
	}})
	if err != nil {
		return err
	}
	defer recv.Close()
	cfg := sessionConfig(env, s, in.ID, sub, connConfig(s.r, ice, in.RelayOnly), view)
	cfg.OnConnect = func(c *peer.Conn) {
		view.note("Verification: %s (compare with the other screen); path %s", c.Verification(), c.SelectedPair())
	}
	runErr := peer.RunReceiver(ctx, cfg, recv)
	view.finish()
	results := recv.Results()
	var written int64
	for i, f := range recv.Manifest() {
		if results[i] == peer.FileOK {
			written += f.Size
		}
	}
	err = report(ctx, env, s, in.ID, runErr, results, written, recv.Names())
	for i, n := range recv.Names() {
		if results[i] == peer.FileOK {
			fmt.Fprintf(env.Stdout, "received %s\n", n)
		}
	}
	return err
}

// codeAndBase reads a pairing code, or its link https://HOST/t/CODE.
func codeAndBase(arg string) (code, base string) {
	if u, err := url.Parse(arg); err == nil && u.Host != "" && strings.HasPrefix(u.Path, "/t/") {
		return normalizeCode(strings.TrimPrefix(u.Path, "/t/")), u.Scheme + "://" + u.Host
	}
	return normalizeCode(arg), ""
}

func normalizeCode(c string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(c))
}

// pairAsGuest consumes a pairing code and opens the guest's realtime
// connection.
func pairAsGuest(ctx context.Context, env *Env, fs *flag.FlagSet, p *prompter, arg string) (*session, incoming, http.Header, error) {
	var in incoming
	code, base := codeAndBase(arg)
	if base != "" && flagString(fs, "url") == "" {
		fs.Set("url", base)
	}
	r, _, err := connect(env, fs, false)
	if err != nil {
		return nil, in, nil, err
	}
	r.token = "" // a guest: the pairing is the only credential
	if strings.HasPrefix(r.base, "https://") && r.tls == nil {
		if r, _, err = probe(ctx, env, p, r, "", flagBool(fs, "trust-ca")); err != nil {
			return nil, in, nil, fmt.Errorf("reach %s: %w", r.base, err)
		}
	}
	var pair struct {
		Ticket   string   `json:"ticket"`
		Transfer incoming `json:"transfer"`
	}
	if err := r.do(ctx, "POST", "/api/v1/transfer/pair", http.Header{"X-Hearth-Csrf": {"1"}}, map[string]string{"code": code}, &pair); err != nil {
		return nil, in, nil, fmt.Errorf("pair with code %s: %w", code, err)
	}
	header := http.Header{"Authorization": {"Bearer " + pair.Ticket}}
	s, err := openSession(ctx, r, pair.Ticket)
	if err != nil {
		return nil, in, nil, err
	}
	return s, pair.Transfer, header, nil
}

// waitForOffer waits, as the logged-in member, for a transfer offered to
// this device.
func waitForOffer(ctx context.Context, env *Env, fs *flag.FlagSet) (*session, incoming, error) {
	var in incoming
	r, creds, err := connect(env, fs, true)
	if err != nil {
		return nil, in, err
	}
	s, err := openSession(ctx, r, creds.Token)
	if err != nil {
		return nil, in, err
	}
	fmt.Fprintf(env.Stderr, "Waiting for files sent to you at %s (Ctrl-C to stop)…\n", r.base)
	for {
		env, err := s.sig.Next(ctx, func(e hub.Envelope) bool { return e.Type == "transfer.incoming" })
		if err != nil {
			s.sig.Close()
			return nil, in, err
		}
		if json.Unmarshal(env.Data, &in) == nil && in.ID != "" {
			return s, in, nil
		}
	}
}
