package chat

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/store"
)

// Channel kinds.
const (
	KindPublic  = "public"
	KindPrivate = "private"
	KindDM      = "dm"
)

// Channel is a conversation.
type Channel struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Topic     string    `json:"topic,omitempty"`
	Members   []string  `json:"members,omitempty"` // private and dm
	Groups    []string  `json:"groups,omitempty"`  // private: members through groups
	Voice     bool      `json:"voice,omitempty"`   // a voice channel: its readers may join the call
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	LastSeq   uint64    `json:"last_seq"`
	LastAt    time.Time `json:"last_at"`
}

// Group is a named set of users, mentionable as @name and usable for
// private channel membership.
type Group struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

var channelNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// canRead reports whether user may read ch; s.mu must be held.
func (s *Service) canReadLocked(userID string, ch *Channel) bool {
	role, ok := s.roles[userID]
	if !ok {
		return false // unknown or disabled
	}
	switch ch.Kind {
	case KindPublic:
		return role != auth.RoleGuest || contains(ch.Members, userID)
	case KindDM:
		return contains(ch.Members, userID)
	default:
		if contains(ch.Members, userID) {
			return true
		}
		for _, gid := range ch.Groups {
			if g := s.groups[gid]; g != nil && contains(g.Members, userID) {
				return true
			}
		}
		return false
	}
}

// CanRead reports whether a user may see a channel and its messages. It
// reads memory only (it is the hub's Visible hook).
func (s *Service) CanRead(userID, channelID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ch := s.channels[channelID]
	return ch != nil && s.canReadLocked(userID, ch)
}

// channel returns a copy of a channel the user may read.
func (s *Service) channel(userID, channelID string) (Channel, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ch := s.channels[channelID]
	if ch == nil || !s.canReadLocked(userID, ch) {
		return Channel{}, ErrNoChannel
	}
	return *ch, nil
}

// readers lists the users who may read ch.
func (s *Service) readers(ch *Channel) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for u := range s.roles {
		if s.canReadLocked(u, ch) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// ChannelView is a channel as one user sees it.
type ChannelView struct {
	Channel
	ReadSeq  uint64 `json:"read_seq"`
	Unread   int    `json:"unread"`   // capped at 100
	Mentions int    `json:"mentions"` // unread mentions and DMs
}

// Channels lists the channels a user may read, with unread and mention
// counts.
func (s *Service) Channels(userID string) ([]ChannelView, error) {
	s.mu.RLock()
	var list []Channel
	for _, ch := range s.channels {
		if s.canReadLocked(userID, ch) {
			list = append(list, *ch)
		}
	}
	s.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool {
		if list[i].Kind != list[j].Kind {
			return list[i].Kind < list[j].Kind
		}
		return list[i].Name < list[j].Name
	})
	out := make([]ChannelView, 0, len(list))
	err := s.st.View(func(tx *store.Tx) error {
		mentions, err := unreadNotifications(tx, userID)
		if err != nil {
			return err
		}
		for _, ch := range list {
			v := ChannelView{Channel: ch}
			v.ReadSeq, err = readPos(tx, userID, ch.ID)
			if err != nil {
				return err
			}
			v.Unread, err = countUnread(tx, userID, ch.ID, v.ReadSeq)
			if err != nil {
				return err
			}
			for _, n := range mentions {
				if n.Channel == ch.ID && n.MsgSeq > v.ReadSeq {
					v.Mentions++
				}
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// ChannelRequest creates or changes a channel. Nil fields stay as they are.
type ChannelRequest struct {
	Name    *string   `json:"name"`
	Topic   *string   `json:"topic"`
	Kind    string    `json:"kind"`  // on create: public (default) or private
	Voice   bool      `json:"voice"` // on create: a voice channel
	Members *[]string `json:"members"`
	Groups  *[]string `json:"groups"`
}

func (s *Service) checkMembers(ids []string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if _, ok := s.roles[id]; !ok {
			return ErrBadMembers
		}
	}
	return nil
}

func (s *Service) checkGroups(ids []string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if s.groups[id] == nil {
			return ErrNoGroup
		}
	}
	return nil
}

func (s *Service) nameTaken(name, except string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.channels {
		if c.Kind != KindDM && c.Name == name && c.ID != except {
			return true
		}
	}
	return false
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func validTopic(t string) bool {
	return utf8.RuneCountInString(t) <= 250 && !strings.ContainsAny(t, "\x00")
}

// CreateChannel makes a public or private channel; its creator is a
// member. Guests cannot create channels.
func (s *Service) CreateChannel(user auth.User, req ChannelRequest) (Channel, error) {
	if user.Role == auth.RoleGuest {
		return Channel{}, ErrGuest
	}
	ch := Channel{ID: newID(8), Kind: req.Kind, Voice: req.Voice, CreatedBy: user.ID, Created: s.now().UTC()}
	if ch.Kind == "" {
		ch.Kind = KindPublic
	}
	if ch.Kind != KindPublic && ch.Kind != KindPrivate {
		return Channel{}, fmt.Errorf("a channel is public or private")
	}
	if req.Name == nil || !channelNameRE.MatchString(*req.Name) {
		return Channel{}, ErrBadChannelName
	}
	ch.Name = *req.Name
	if req.Topic != nil {
		if !validTopic(*req.Topic) {
			return Channel{}, fmt.Errorf("a topic is at most 250 characters")
		}
		ch.Topic = *req.Topic
	}
	if ch.Kind == KindPrivate {
		if req.Members != nil {
			ch.Members = *req.Members
		}
		ch.Members = dedupe(append(ch.Members, user.ID))
		if req.Groups != nil {
			ch.Groups = dedupe(*req.Groups)
		}
		if err := s.checkMembers(ch.Members); err != nil {
			return Channel{}, err
		}
		if err := s.checkGroups(ch.Groups); err != nil {
			return Channel{}, err
		}
	}
	if s.nameTaken(ch.Name, "") {
		return Channel{}, ErrChannelExists
	}
	if err := s.saveChannel(&ch, "channel.new"); err != nil {
		return Channel{}, err
	}
	s.log.Info("channel created", "channel", ch.Name, "kind", ch.Kind)
	return ch, nil
}

// saveChannel stores ch with an event to its readers (and, on a change of
// members, to those who lost access, so their clients drop it).
func (s *Service) saveChannel(ch *Channel, typ string) error {
	s.mu.RLock()
	old := s.channels[ch.ID]
	s.mu.RUnlock()
	var lost []string
	if old != nil {
		for _, u := range s.readers(old) {
			if !contains(s.readers(ch), u) {
				lost = append(lost, u)
			}
		}
	}
	err := s.commit(func(tx *store.Tx, ev *events) error {
		if cur, ok, err := store.Get[Channel](tx, store.BucketChannels, ch.ID); err != nil {
			return err
		} else if ok {
			ch.LastSeq, ch.LastAt = cur.LastSeq, cur.LastAt
		}
		if err := store.Put(tx, store.BucketChannels, ch.ID, *ch); err != nil {
			return err
		}
		if len(lost) > 0 {
			if err := ev.add(tx, s.now(), "channel.removed", "", lost, map[string]string{"channel": ch.ID}); err != nil {
				return err
			}
		}
		return ev.add(tx, s.now(), typ, ch.ID, nil, ch)
	}, func() {
		// The cache decides who sees the event: update it first.
		s.mu.Lock()
		c := *ch
		s.channels[ch.ID] = &c
		s.mu.Unlock()
	})
	if err != nil {
		return err
	}
	return nil
}

// UpdateChannel renames a channel, sets its topic or (private) its members
// and groups. Members of the channel and admins may.
func (s *Service) UpdateChannel(user auth.User, id string, req ChannelRequest) (Channel, error) {
	ch, err := s.channel(user.ID, id)
	if err != nil {
		return Channel{}, err
	}
	if ch.Kind == KindDM || (user.Role == auth.RoleGuest) {
		return Channel{}, fmt.Errorf("this conversation cannot be changed")
	}
	if req.Name != nil {
		if !channelNameRE.MatchString(*req.Name) {
			return Channel{}, ErrBadChannelName
		}
		if s.nameTaken(*req.Name, ch.ID) {
			return Channel{}, ErrChannelExists
		}
		ch.Name = *req.Name
	}
	if req.Topic != nil {
		if !validTopic(*req.Topic) {
			return Channel{}, fmt.Errorf("a topic is at most 250 characters")
		}
		ch.Topic = *req.Topic
	}
	if ch.Kind == KindPrivate {
		if req.Members != nil {
			ch.Members = dedupe(*req.Members)
			if err := s.checkMembers(ch.Members); err != nil {
				return Channel{}, err
			}
		}
		if req.Groups != nil {
			ch.Groups = dedupe(*req.Groups)
			if err := s.checkGroups(ch.Groups); err != nil {
				return Channel{}, err
			}
		}
	}
	if err := s.saveChannel(&ch, "channel.update"); err != nil {
		return Channel{}, err
	}
	return ch, nil
}

// OpenDM returns the direct conversation between user and others (one to
// one or a small group), creating it the first time.
func (s *Service) OpenDM(user auth.User, others []string) (Channel, error) {
	members := dedupe(append(append([]string(nil), others...), user.ID))
	if len(members) < 2 || len(members) > MaxGroupDMMembers {
		return Channel{}, ErrDMSize
	}
	if err := s.checkMembers(members); err != nil {
		return Channel{}, err
	}
	s.mu.RLock()
	for _, c := range s.channels {
		if c.Kind == KindDM && strings.Join(c.Members, ",") == strings.Join(members, ",") {
			s.mu.RUnlock()
			return *c, nil
		}
	}
	s.mu.RUnlock()
	ch := Channel{ID: newID(8), Kind: KindDM, Name: "dm", Members: members, CreatedBy: user.ID, Created: s.now().UTC()}
	if err := s.saveChannel(&ch, "channel.new"); err != nil {
		return Channel{}, err
	}
	return ch, nil
}

// EnsureDefault creates #general when there is no channel yet.
func (s *Service) EnsureDefault() error {
	s.mu.RLock()
	n := len(s.channels)
	s.mu.RUnlock()
	if n > 0 {
		return nil
	}
	ch := Channel{ID: newID(8), Kind: KindPublic, Name: "general", Topic: "Everything and anything", Created: s.now().UTC()}
	if err := s.saveChannel(&ch, "channel.new"); err != nil {
		return err
	}
	lounge := Channel{ID: newID(8), Kind: KindPublic, Name: "lounge", Topic: "Drop in and talk", Voice: true, Created: s.now().UTC()}
	return s.saveChannel(&lounge, "channel.new")
}

var groupNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Groups lists the user groups.
func (s *Service) Groups() []Group {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Group, 0, len(s.groups))
	for _, g := range s.groups {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SaveGroup creates (empty id) or replaces a group. Admins only.
func (s *Service) SaveGroup(user auth.User, g Group) (Group, error) {
	if user.Role != auth.RoleAdmin {
		return Group{}, auth.ErrUnauthenticated
	}
	if !groupNameRE.MatchString(g.Name) || contains([]string{"here", "channel", "everyone"}, g.Name) {
		return Group{}, ErrBadGroupName
	}
	g.Members = dedupe(g.Members)
	if err := s.checkMembers(g.Members); err != nil {
		return Group{}, err
	}
	s.mu.RLock()
	for _, o := range s.groups {
		if o.Name == g.Name && o.ID != g.ID {
			s.mu.RUnlock()
			return Group{}, ErrGroupExists
		}
	}
	if g.ID != "" && s.groups[g.ID] == nil {
		s.mu.RUnlock()
		return Group{}, ErrNoGroup
	}
	s.mu.RUnlock()
	if u, err := s.users.UserByName(g.Name); err == nil && u.ID != "" {
		return Group{}, ErrGroupExists
	}
	if g.ID == "" {
		g.ID = newID(6)
	}
	err := s.commit(func(tx *store.Tx, ev *events) error {
		if err := store.Put(tx, store.BucketGroups, g.ID, g); err != nil {
			return err
		}
		return ev.add(tx, s.now(), "group.update", "", nil, g)
	}, func() {
		s.mu.Lock()
		c := g
		s.groups[g.ID] = &c
		s.mu.Unlock()
	})
	if err != nil {
		return Group{}, err
	}
	return g, nil
}

// CanJoinVoice reports whether a user may join a channel's call: it is a
// voice channel the user may read.
func (s *Service) CanJoinVoice(userID, channelID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ch := s.channels[channelID]
	return ch != nil && ch.Voice && s.canReadLocked(userID, ch)
}
