package chat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/chat"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store"
	"github.com/hearth-home/hearth/appliance/store/storetest"
)

var ctx = context.Background()

type fixture struct {
	st   *store.Store
	auth *auth.Service
	chat *chat.Service
	mum  auth.User
	dad  auth.User
	kid  auth.User
	gst  auth.User

	mu        sync.Mutex
	published []hub.Event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: storetest.Open(t)}
	a, err := auth.New(auth.Config{Store: f.st, Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	f.auth = a
	mk := func(name, role string) auth.User {
		u, err := a.CreateUser(ctx, auth.NewUser{Name: name, Password: "long enough", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	f.mum, f.dad, f.kid, f.gst = mk("mum", auth.RoleAdmin), mk("dad", auth.RoleMember), mk("kid", auth.RoleMember), mk("guest", auth.RoleGuest)
	f.chat = f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) *chat.Service {
	t.Helper()
	c, err := chat.New(chat.Config{Store: f.st, Users: f.auth, Dir: t.TempDir(), AttachmentLimit: 64 << 10, UserQuota: 100 << 10,
		Publish: func(ev hub.Event) { f.mu.Lock(); f.published = append(f.published, ev); f.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureDefault(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) general(t *testing.T) chat.ChannelView {
	t.Helper()
	cs, err := f.chat.Channels(f.mum.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "general" {
			return c
		}
	}
	t.Fatal("no #general")
	return chat.ChannelView{}
}

func ptr[T any](v T) *T { return &v }

func TestPostHistoryAndUnread(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	for i := range 5 {
		if _, err := f.chat.PostMessage(ctx, f.mum, g.ID, chat.Post{Text: fmt.Sprintf("hello %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := f.chat.History(f.kid.ID, g.ID, 0, 0, 3)
	if err != nil || len(page.Messages) != 3 || page.Messages[0].Seq != 3 || page.Messages[2].Seq != 5 || !page.More {
		t.Fatalf("History(latest 3) = %+v, %v", page, err)
	}
	older, _ := f.chat.History(f.kid.ID, g.ID, 3, 0, 10)
	if len(older.Messages) != 2 || older.Messages[0].Seq != 1 || older.More {
		t.Fatalf("History(before 3) = %+v", older)
	}
	newer, _ := f.chat.History(f.kid.ID, g.ID, 0, 3, 10)
	if len(newer.Messages) != 2 || newer.Messages[0].Seq != 4 {
		t.Fatalf("History(after 3) = %+v", newer)
	}
	view := func(u auth.User) chat.ChannelView {
		cs, _ := f.chat.Channels(u.ID)
		for _, c := range cs {
			if c.ID == g.ID {
				return c
			}
		}
		t.Fatalf("%s cannot see #general", u.Name)
		return chat.ChannelView{}
	}
	if v := view(f.kid); v.Unread != 5 {
		t.Fatalf("kid unread = %d, want 5", v.Unread)
	}
	if v := view(f.mum); v.Unread != 0 {
		t.Fatalf("author's own unread = %d, want 0", v.Unread)
	}
	if err := f.chat.MarkRead(f.kid.ID, g.ID, 3); err != nil {
		t.Fatal(err)
	}
	if v := view(f.kid); v.Unread != 2 || v.ReadSeq != 3 {
		t.Fatalf("after reading to 3: unread %d read %d", v.Unread, v.ReadSeq)
	}
	f.chat.MarkRead(f.kid.ID, g.ID, 1) // never moves back
	if v := view(f.kid); v.ReadSeq != 3 {
		t.Fatalf("read position moved back to %d", v.ReadSeq)
	}
}

func TestIdempotentResend(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	m1, err := f.chat.PostMessage(ctx, f.kid, g.ID, chat.Post{Text: "once", Key: "k-1"})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := f.chat.PostMessage(ctx, f.kid, g.ID, chat.Post{Text: "once", Key: "k-1"})
	if err != nil || m2.Seq != m1.Seq {
		t.Fatalf("resend = seq %d, %v; want the first message %d", m2.Seq, err, m1.Seq)
	}
	page, _ := f.chat.History(f.kid.ID, g.ID, 0, 0, 50)
	if len(page.Messages) != 1 {
		t.Fatalf("resend stored %d messages", len(page.Messages))
	}
}

func TestBadMessages(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	tests := []struct {
		name string
		post chat.Post
		ch   string
		want error
	}{
		{"empty", chat.Post{Text: "  \n"}, g.ID, chat.ErrEmptyMessage},
		{"too long", chat.Post{Text: strings.Repeat("é", chat.MaxMessageRunes+1)}, g.ID, chat.ErrMessageTooLong},
		{"unknown channel", chat.Post{Text: "hi"}, "nope", chat.ErrNoChannel},
		{"reply to nothing", chat.Post{Text: "hi", ReplyTo: 99}, g.ID, chat.ErrNoMessage},
		{"foreign attachment", chat.Post{Text: "hi", Attachments: []string{"abc"}}, g.ID, chat.ErrNoAttachment},
	}
	for _, tt := range tests {
		if _, err := f.chat.PostMessage(ctx, f.kid, tt.ch, tt.post); !errors.Is(err, tt.want) {
			t.Errorf("%s: PostMessage = %v, want %v", tt.name, err, tt.want)
		}
	}
	if page, _ := f.chat.History(f.mum.ID, g.ID, 0, 0, 10); len(page.Messages) != 0 {
		t.Fatalf("refused posts left %d messages", len(page.Messages))
	}
}

func TestPrivateChannelsInvisibleToOutsiders(t *testing.T) {
	f := newFixture(t)
	parents, err := f.chat.CreateChannel(f.mum, chat.ChannelRequest{Name: ptr("parents"), Kind: chat.KindPrivate, Members: ptr([]string{f.dad.ID})})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.chat.PostMessage(ctx, f.dad, parents.ID, chat.Post{Text: "birthday present for kid"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []auth.User{f.kid, f.gst} {
		cs, _ := f.chat.Channels(u.ID)
		for _, c := range cs {
			if c.ID == parents.ID {
				t.Errorf("%s lists the private channel", u.Name)
			}
		}
		if _, err := f.chat.History(u.ID, parents.ID, 0, 0, 10); !errors.Is(err, chat.ErrNoChannel) {
			t.Errorf("%s reads private history: %v", u.Name, err)
		}
		if res, _ := f.chat.Search(u.ID, chat.SearchQuery{Text: "birthday"}); len(res) != 0 {
			t.Errorf("%s finds private messages by search", u.Name)
		}
		if _, err := f.chat.PostMessage(ctx, u, parents.ID, chat.Post{Text: "hi"}); !errors.Is(err, chat.ErrNoChannel) {
			t.Errorf("%s posts to the private channel: %v", u.Name, err)
		}
		if _, err := f.chat.React(u, parents.ID, m.Seq, "👍", true); !errors.Is(err, chat.ErrNoChannel) {
			t.Errorf("%s reacts in the private channel: %v", u.Name, err)
		}
		if f.chat.CanRead(u.ID, parents.ID) {
			t.Errorf("CanRead(%s, private) = true", u.Name)
		}
	}
	var buf bytes.Buffer
	f.chat.Replay(ctx, f.kid.ID, 0, f.chat.LastEventID(), func(ev hub.Event) error {
		fmt.Fprintf(&buf, "%s %s\n", ev.Type, ev.Data)
		return nil
	})
	if strings.Contains(buf.String(), "birthday") || strings.Contains(buf.String(), parents.ID) {
		t.Fatalf("kid's replay contains the private channel:\n%s", buf.String())
	}
	// Membership through a group.
	grp, err := f.chat.SaveGroup(f.mum, chat.Group{Name: "grown-ups", Members: []string{f.kid.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.chat.UpdateChannel(f.mum, parents.ID, chat.ChannelRequest{Groups: ptr([]string{grp.ID})}); err != nil {
		t.Fatal(err)
	}
	if !f.chat.CanRead(f.kid.ID, parents.ID) {
		t.Fatal("group member cannot read the channel the group was added to")
	}
	if f.chat.CanRead(f.gst.ID, f.general(t).ID) {
		t.Fatal("guest reads #general uninvited")
	}
}

func TestMentionsAndNotifications(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	if _, err := f.chat.SaveGroup(f.mum, chat.Group{Name: "kids", Members: []string{f.kid.ID}}); err != nil {
		t.Fatal(err)
	}
	m, err := f.chat.PostMessage(ctx, f.mum, g.ID, chat.Post{Text: "@dad dinner! and @kids too, not @nobody, mail@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Mentions, ","); !strings.Contains(got, f.dad.ID) || !strings.Contains(got, f.kid.ID) || len(m.Mentions) != 2 {
		t.Fatalf("mentions = %v, want dad and kid", m.Mentions)
	}
	ns, _ := f.chat.Notifications(f.dad.ID, 10)
	if len(ns) != 1 || ns[0].Kind != chat.NotifyMention || ns[0].MsgSeq != m.Seq {
		t.Fatalf("dad's notifications = %+v", ns)
	}
	cs, _ := f.chat.Channels(f.dad.ID)
	for _, c := range cs {
		if c.ID == g.ID && c.Mentions != 1 {
			t.Fatalf("dad's mention count = %d", c.Mentions)
		}
	}
	f.chat.MarkRead(f.dad.ID, g.ID, m.Seq)
	cs, _ = f.chat.Channels(f.dad.ID)
	for _, c := range cs {
		if c.ID == g.ID && c.Mentions != 0 {
			t.Fatalf("mentions after read = %d", c.Mentions)
		}
	}
	dm, err := f.chat.OpenDM(f.kid, []string{f.mum.ID})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := f.chat.OpenDM(f.mum, []string{f.kid.ID})
	if again.ID != dm.ID {
		t.Fatal("OpenDM made a second conversation for the same people")
	}
	f.chat.PostMessage(ctx, f.kid, dm.ID, chat.Post{Text: "can I have a biscuit"})
	ns, _ = f.chat.Notifications(f.mum.ID, 10)
	if len(ns) != 1 || ns[0].Kind != chat.NotifyDM {
		t.Fatalf("mum's notifications = %+v", ns)
	}
	if f.chat.CanRead(f.dad.ID, dm.ID) {
		t.Fatal("dad can read a DM between mum and kid")
	}
}

func TestEditDeleteReact(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	m, _ := f.chat.PostMessage(ctx, f.kid, g.ID, chat.Post{Text: "hello wrold"})
	if _, err := f.chat.EditMessage(f.dad, g.ID, m.Seq, "hijack"); !errors.Is(err, chat.ErrNotAuthor) {
		t.Fatalf("edit by another = %v", err)
	}
	e, err := f.chat.EditMessage(f.kid, g.ID, m.Seq, "hello world")
	if err != nil || e.Edited == nil || e.Text != "hello world" {
		t.Fatalf("edit = %+v %v", e, err)
	}
	if res, _ := f.chat.Search(f.dad.ID, chat.SearchQuery{Text: "world"}); len(res) != 1 {
		t.Fatalf("search after edit finds %d", len(res))
	}
	if res, _ := f.chat.Search(f.dad.ID, chat.SearchQuery{Text: "wrold"}); len(res) != 0 {
		t.Fatalf("search finds the old text")
	}
	r, err := f.chat.React(f.dad, g.ID, m.Seq, "👍", true)
	if err != nil || len(r.Reactions["👍"]) != 1 {
		t.Fatalf("react = %+v %v", r.Reactions, err)
	}
	if _, err := f.chat.React(f.dad, g.ID, m.Seq, "<b>", true); !errors.Is(err, chat.ErrBadReaction) {
		t.Fatalf("text reaction = %v", err)
	}
	r, _ = f.chat.React(f.dad, g.ID, m.Seq, "👍", false)
	if len(r.Reactions) != 0 {
		t.Fatalf("unreact left %v", r.Reactions)
	}
	reply, err := f.chat.PostMessage(ctx, f.dad, g.ID, chat.Post{Text: "indeed", ReplyTo: m.Seq})
	if err != nil || reply.Quote == nil || reply.Quote.Text != "hello world" {
		t.Fatalf("reply = %+v %v", reply, err)
	}
	if _, err := f.chat.DeleteMessage(f.dad, g.ID, m.Seq); !errors.Is(err, chat.ErrNotAuthor) {
		t.Fatalf("delete by another member = %v", err)
	}
	d, err := f.chat.DeleteMessage(f.mum, g.ID, m.Seq) // admin may
	if err != nil || !d.Deleted || d.Text != "" {
		t.Fatalf("admin delete = %+v %v", d, err)
	}
	if res, _ := f.chat.Search(f.dad.ID, chat.SearchQuery{Text: "world"}); len(res) != 0 {
		t.Fatal("deleted message still found")
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	texts := []string{"The holiday plan", "holiday photos are up", "Plan the garden", "nothing here"}
	for i, tx := range texts {
		u := f.mum
		if i%2 == 1 {
			u = f.dad
		}
		f.chat.PostMessage(ctx, u, g.ID, chat.Post{Text: tx})
	}
	tests := []struct {
		q    chat.SearchQuery
		want []string
	}{
		{chat.SearchQuery{Text: "holiday"}, []string{"holiday photos are up", "The holiday plan"}},
		{chat.SearchQuery{Text: "PLAN holiday"}, []string{"The holiday plan"}},
		{chat.SearchQuery{Text: "plan", Author: f.mum.ID}, []string{"Plan the garden", "The holiday plan"}},
		{chat.SearchQuery{Text: "plan", Channel: "other"}, nil},
		{chat.SearchQuery{Text: "zebra"}, nil},
		{chat.SearchQuery{Text: "a"}, nil},
	}
	for _, tt := range tests {
		res, err := f.chat.Search(f.kid.ID, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			got = append(got, r.Text)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Search(%+v) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

func pngBytes(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{200, 50, 50, 255})
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func TestAttachments(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	a, err := f.chat.Upload(ctx, f.kid, g.ID, "drawing.png", bytes.NewReader(pngBytes(900, 300)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Type != "image/png" || !a.Thumb || a.Width != 900 {
		t.Fatalf("upload = %+v", a)
	}
	// Pending uploads are the owner's alone.
	if _, _, err := f.chat.OpenAttachment(f.dad.ID, a.ID, false); !errors.Is(err, chat.ErrNoAttachment) {
		t.Fatalf("another user opens a pending upload: %v", err)
	}
	m, err := f.chat.PostMessage(ctx, f.kid, g.ID, chat.Post{Attachments: []string{a.ID}})
	if err != nil || len(m.Attachments) != 1 {
		t.Fatalf("post with attachment = %+v %v", m, err)
	}
	_, file, err := f.chat.OpenAttachment(f.dad.ID, a.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := image.DecodeConfig(file)
	file.Close()
	if err != nil || cfg.Width != 480 || cfg.Height != 160 {
		t.Fatalf("thumbnail = %+v %v", cfg, err)
	}
	if _, err := f.chat.PostMessage(ctx, f.kid, g.ID, chat.Post{Attachments: []string{a.ID}}); !errors.Is(err, chat.ErrNoAttachment) {
		t.Fatalf("attachment claimed twice: %v", err)
	}
	for _, name := range []string{"../etc/passwd", "a\x00b", "", "evil\u202egpj.exe", strings.Repeat("n", 201)} {
		if _, err := f.chat.Upload(ctx, f.kid, g.ID, name, strings.NewReader("x")); !errors.Is(err, chat.ErrBadFileName) {
			t.Errorf("Upload(name %q) = %v", name, err)
		}
	}
	if _, err := f.chat.Upload(ctx, f.kid, g.ID, "big.bin", io.LimitReader(zeros{}, 65<<10)); !errors.Is(err, chat.ErrTooLarge) {
		t.Fatalf("oversized upload = %v", err)
	}
	for i := range 3 {
		f.chat.Upload(ctx, f.dad, g.ID, fmt.Sprintf("f%d.bin", i), io.LimitReader(zeros{}, 40<<10))
	}
	if _, err := f.chat.Upload(ctx, f.dad, g.ID, "more.bin", io.LimitReader(zeros{}, 30<<10)); !errors.Is(err, chat.ErrQuota) {
		t.Fatalf("over quota = %v", err)
	}
	if _, err := f.chat.Upload(ctx, f.gst, g.ID, "x.txt", strings.NewReader("x")); !errors.Is(err, chat.ErrNoChannel) {
		t.Fatalf("guest upload to uninvited channel = %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestEventsAreOrderedAndSurviveRestart(t *testing.T) {
	f := newFixture(t)
	g := f.general(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.chat.PostMessage(ctx, f.kid, g.ID, chat.Post{Text: fmt.Sprintf("m%d", i), Key: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	last := f.chat.LastEventID()
	// A new service on the same store (a restart) replays the same events.
	c2 := f.open(t)
	var ids []uint64
	seqs := map[uint64]bool{}
	c2.Replay(ctx, f.dad.ID, 0, last, func(ev hub.Event) error {
		ids = append(ids, ev.ID)
		return nil
	})
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("replay out of order: %v", ids)
		}
	}
	page, _ := c2.History(f.dad.ID, g.ID, 0, 0, 100)
	for _, m := range page.Messages {
		if seqs[m.Seq] {
			t.Fatalf("seq %d twice", m.Seq)
		}
		seqs[m.Seq] = true
	}
	if len(page.Messages) != 20 || page.Messages[19].Seq != 20 {
		t.Fatalf("after 20 concurrent posts: %d messages, last seq %d", len(page.Messages), page.Messages[len(page.Messages)-1].Seq)
	}
	// Published (live) events match the stored ones, every ID once.
	f.mu.Lock()
	pub := map[uint64]int{}
	for _, ev := range f.published {
		pub[ev.ID]++
	}
	f.mu.Unlock()
	for id := uint64(1); id <= last; id++ {
		if pub[id] != 1 {
			t.Fatalf("event %d published %d times", id, pub[id])
		}
	}
}
