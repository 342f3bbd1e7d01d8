package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. Each feature package owns the records in its buckets; the
// store owns their existence, through the migrations below.
const (
	BucketMeta     = "meta"     // schema version, setup token, secrets
	BucketUsers    = "users"    // auth: user ID → User
	BucketNames    = "names"    // auth: user name → user ID
	BucketSessions = "sessions" // auth: token hash → Session
	BucketInvites  = "invites"  // auth: invite ID → Invite

	BucketChannels      = "channels"      // chat: channel ID → Channel
	BucketGroups        = "groups"        // chat: group ID → Group
	BucketMessages      = "messages"      // chat: channel ID/seq → Message
	BucketReads         = "reads"         // chat: user ID/channel ID → read position
	BucketNotifications = "notifications" // chat: user ID/seq → Notification
	BucketEvents        = "events"        // chat: event ID → stored realtime event
	BucketSearch        = "search"        // chat: term/message ordinal → channel/seq
	BucketIdempotency   = "idempotency"   // chat: user ID/client key → channel/seq
	BucketAttachments   = "attachments"   // chat: attachment ID → Attachment

	BucketCerts = "certs" // certs: certificates, CA and ACME account, locks

	BucketTransfers = "transfers" // transfer: user ID/transfer ID/direction → history record
)

const keySchema = "schema_version"

// migration moves the database from Version-1 to Version.
type migration struct {
	Version int
	Name    string
	Apply   func(tx *bolt.Tx) error
}

// migrations is the ordered list of schema changes. Append only: a released
// migration never changes.
var migrations = []migration{
	{Version: 1, Name: "accounts", Apply: createBuckets(BucketUsers, BucketNames, BucketSessions, BucketInvites)},
	{Version: 2, Name: "chat", Apply: createBuckets(BucketChannels, BucketGroups, BucketMessages, BucketReads,
		BucketNotifications, BucketEvents, BucketSearch, BucketIdempotency, BucketAttachments)},
	{Version: 3, Name: "certificates", Apply: createBuckets(BucketCerts)},
	{Version: 4, Name: "transfer history", Apply: createBuckets(BucketTransfers)},
}

// SchemaVersionSupported is the newest schema version this build knows.
func SchemaVersionSupported() int { return migrations[len(migrations)-1].Version }

func createBuckets(names ...string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists([]byte(n)); err != nil {
				return fmt.Errorf("create bucket %s: %w", n, err)
			}
		}
		return nil
	}
}

// SchemaVersion returns the schema version recorded in the file (0 for a
// new file).
func (s *Store) SchemaVersion() (int, error) {
	var v int
	err := s.db.View(func(tx *bolt.Tx) error {
		v = readVersion(tx)
		return nil
	})
	return v, classify(err)
}

func readVersion(tx *bolt.Tx) int {
	b := tx.Bucket([]byte(BucketMeta))
	if b == nil {
		return 0
	}
	raw := b.Get([]byte(keySchema))
	if len(raw) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(raw))
}

func (s *Store) checkSchema() error {
	v, err := s.SchemaVersion()
	if err != nil {
		return err
	}
	if v > SchemaVersionSupported() {
		return fmt.Errorf("%w (file has schema %d, this build supports up to %d): upgrade hearth or restore a backup",
			ErrNewerSchema, v, SchemaVersionSupported())
	}
	return nil
}

// migrate applies every pending migration, each in its own transaction
// together with the new version number, so a crash leaves the file at a
// well-defined version.
func (s *Store) migrate() error {
	if err := s.checkSchema(); err != nil {
		return err
	}
	for _, m := range migrations {
		err := s.db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists([]byte(BucketMeta))
			if err != nil {
				return err
			}
			if readVersion(tx) >= m.Version {
				return nil
			}
			if err := m.Apply(tx); err != nil {
				return err
			}
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(m.Version))
			return meta.Put([]byte(keySchema), b[:])
		})
		if err != nil {
			return fmt.Errorf("migrate schema to %d (%s): %w", m.Version, m.Name, classify(err))
		}
	}
	return nil
}
