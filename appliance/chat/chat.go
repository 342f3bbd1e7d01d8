package chat

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/hub"
	"github.com/hearth-home/hearth/appliance/store"
)

// Limits and defaults.
const (
	MaxMessageRunes        = 4000
	DefaultAttachmentLimit = 100 << 20 // bytes per file
	DefaultUserQuota       = 2 << 30   // bytes of attachments per user
	MaxGroupDMMembers      = 8
	eventKeep              = 30 * 24 * time.Hour
)

// Sentinel errors; their text is fit to show a person.
var (
	ErrNoChannel      = errors.New("no such channel, or you are not a member of it")
	ErrNotMember      = errors.New("you are not a member of this channel")
	ErrNoMessage      = errors.New("no such message")
	ErrEmptyMessage   = errors.New("a message needs text or an attachment")
	ErrMessageTooLong = fmt.Errorf("a message is at most %d characters", MaxMessageRunes)
	ErrNotAuthor      = errors.New("only the author (or an admin) can do that to a message")
	ErrBadChannelName = errors.New("a channel name is 1 to 40 lowercase letters, digits, dashes or underscores")
	ErrChannelExists  = errors.New("a channel with that name already exists")
	ErrBadGroupName   = errors.New("a group name is 1 to 32 lowercase letters, digits, dashes or underscores, and not a user's name")
	ErrGroupExists    = errors.New("a group or user with that name already exists")
	ErrNoGroup        = errors.New("no such group")
	ErrBadMembers     = errors.New("members must be existing, enabled users")
	ErrTooLarge       = errors.New("the file is larger than the attachment limit")
	ErrQuota          = errors.New("your attachment storage is full; delete some files or ask an admin")
	ErrBadFileName    = errors.New("a file name is 1 to 200 characters without slashes or control characters")
	ErrNoAttachment   = errors.New("no such attachment")
	ErrBadReaction    = errors.New("a reaction is one emoji")
	ErrDeleted        = errors.New("that message was deleted")
	ErrGuest          = errors.New("guests can only take part where they were invited")
	ErrDMSize         = fmt.Errorf("a direct conversation has 2 to %d people", MaxGroupDMMembers)
)

// Users is what chat needs to know about accounts.
type Users interface {
	Users() ([]auth.User, error)
	User(id string) (auth.User, error)
	UserByName(name string) (auth.User, error)
}

// Config configures a Service.
type Config struct {
	Store *store.Store // required
	Users Users        // required
	// Dir holds attachment files; required for attachments.
	Dir string
	// Publish delivers committed events live; nil drops them (clients
	// still get them on their next resume).
	Publish         func(hub.Event)
	AttachmentLimit int64 // zero: DefaultAttachmentLimit
	UserQuota       int64 // zero: DefaultUserQuota
	Now             func() time.Time
	Logger          *slog.Logger
}

// Service is the chat domain. It is safe for concurrent use.
type Service struct {
	st      *store.Store
	users   Users
	dir     string
	publish func(hub.Event)
	limit   int64
	quota   int64
	now     func() time.Time
	log     *slog.Logger

	mu       sync.RWMutex
	channels map[string]*Channel // cache of every channel
	groups   map[string]*Group
	roles    map[string]string // user ID → role, for access checks

	idxMu      sync.Mutex
	idxRunning bool // an indexer goroutine is running
	idxAgain   bool // messages were queued since it last looked
	idxManual  bool // tests: no background indexer, IndexQueued only
}

// New builds the service and loads channels and groups into memory.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Users == nil {
		return nil, errors.New("chat: Store and Users are required")
	}
	s := &Service{st: cfg.Store, users: cfg.Users, dir: cfg.Dir, publish: cfg.Publish, limit: cfg.AttachmentLimit,
		quota: cfg.UserQuota, now: cfg.Now, log: cfg.Logger,
		channels: map[string]*Channel{}, groups: map[string]*Group{}, roles: map[string]string{}}
	if s.publish == nil {
		s.publish = func(hub.Event) {}
	}
	if s.limit == 0 {
		s.limit = DefaultAttachmentLimit
	}
	if s.quota == 0 {
		s.quota = DefaultUserQuota
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dir != "" {
		if err := os.MkdirAll(filepath.Join(s.dir, "tmp"), 0o700); err != nil {
			return nil, fmt.Errorf("chat: attachments directory: %w", err)
		}
		s.cleanTemp()
	}
	err := s.st.View(func(tx *store.Tx) error {
		if err := store.Each(tx, store.BucketChannels, "", func(_ string, c Channel) error {
			s.channels[c.ID] = &c
			return nil
		}); err != nil {
			return err
		}
		return store.Each(tx, store.BucketGroups, "", func(_ string, g Group) error {
			s.groups[g.ID] = &g
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("chat: load channels: %w", err)
	}
	if err := s.RefreshUsers(); err != nil {
		return nil, err
	}
	if s.queuedForIndex() { // messages queued before a restart
		s.kickIndexer()
	}
	return s, nil
}

// RefreshUsers reloads account roles (after users are added or changed).
func (s *Service) RefreshUsers() error {
	us, err := s.users.Users()
	if err != nil {
		return fmt.Errorf("chat: load users: %w", err)
	}
	roles := map[string]string{}
	for _, u := range us {
		if !u.Disabled {
			roles[u.ID] = u.Role
		}
	}
	s.mu.Lock()
	s.roles = roles
	s.mu.Unlock()
	return nil
}

// commit runs fn in one store transaction and, once it is durable, runs
// the after functions (which update what is kept in memory, such as who may
// read a channel) and then publishes the events fn recorded, in order.
func (s *Service) commit(fn func(tx *store.Tx, ev *events) error, after ...func()) error {
	var evs events
	err := s.st.Update(func(tx *store.Tx) error {
		evs = events{}
		return fn(tx, &evs)
	})
	if err != nil {
		return err
	}
	for _, a := range after {
		a()
	}
	for _, e := range evs.list {
		s.publish(e)
	}
	return nil
}

// AttachmentLimit is the largest file one upload may be.
func (s *Service) AttachmentLimit() int64 { return s.limit }
