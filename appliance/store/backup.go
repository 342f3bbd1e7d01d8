package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Info describes a verified database file.
type Info struct {
	Path          string
	Size          int64
	SchemaVersion int
	Buckets       map[string]int // bucket → number of keys
}

// Verify checks that the file at path is a complete, consistent Hearth
// database this build can read: bbolt's page-level consistency check passes,
// it has a schema version, and the version is not newer than this build's.
func Verify(path string) (Info, error) {
	info := Info{Path: path, Buckets: map[string]int{}}
	st, err := os.Stat(path)
	if err != nil {
		return info, fmt.Errorf("verify %s: %w", path, err)
	}
	info.Size = st.Size()
	if err := preflight(path); err != nil {
		return info, fmt.Errorf("verify %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultOpenTimeout})
	if err != nil {
		return info, fmt.Errorf("verify %s: %w", path, classify(err))
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for e := range tx.Check() {
			problems = append(problems, e.Error())
			if len(problems) == 5 {
				break
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%w: %s", ErrCorrupt, strings.Join(problems, "; "))
		}
		info.SchemaVersion = readVersion(tx)
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			info.Buckets[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		return info, fmt.Errorf("verify %s: %w", path, err)
	}
	switch {
	case info.SchemaVersion == 0:
		return info, fmt.Errorf("verify %s: %w: no schema version", path, ErrCorrupt)
	case info.SchemaVersion > SchemaVersionSupported():
		return info, fmt.Errorf("verify %s: %w (schema %d, this build supports up to %d)",
			path, ErrNewerSchema, info.SchemaVersion, SchemaVersionSupported())
	}
	return info, nil
}

// WriteFileAtomic writes what fill produces to path through a temporary file
// in the same directory, synced before it is renamed into place, so path is
// either the old content or the complete new one.
func WriteFileAtomic(path string, mode os.FileMode, fill func(w io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, classify(err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return classify(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, classify(err))
	}
	if err := tmp.Close(); err != nil {
		return classify(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// BackupTo writes a consistent snapshot to path atomically and verifies it.
func (s *Store) BackupTo(path string) (Info, error) {
	err := WriteFileAtomic(path, 0o600, func(w io.Writer) error {
		_, err := s.Backup(w)
		return err
	})
	if err != nil {
		return Info{}, fmt.Errorf("back up to %s: %w", path, err)
	}
	return Verify(path)
}

// Restore replaces the database at dst with the snapshot at src. The
// snapshot is verified first and the current file, if any, is kept beside it
// as dst.before-restore-<time>. The caller must make sure no process has dst
// open; Restore also takes the file lock to be sure.
func Restore(src, dst string, now time.Time) (Info, error) {
	info, err := Verify(src)
	if err != nil {
		return info, fmt.Errorf("restore from %s: %w", src, err)
	}
	if _, err := os.Stat(dst); err == nil {
		// Hold the lock while swapping so a starting daemon cannot open it.
		db, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: DefaultOpenTimeout})
		if err != nil {
			return info, fmt.Errorf("restore to %s: %w", dst, classify(err))
		}
		defer db.Close()
		keep := dst + ".before-restore-" + now.UTC().Format("20060102T150405Z")
		if err := copyFile(dst, keep); err != nil {
			return info, fmt.Errorf("keep current database as %s: %w", keep, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("restore to %s: %w", dst, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return info, fmt.Errorf("restore to %s: %w", dst, err)
	}
	err = WriteFileAtomic(dst, 0o600, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
	if err != nil {
		return info, fmt.Errorf("restore to %s: %w", dst, err)
	}
	if err := chownLikeDir(dst); err != nil {
		return info, fmt.Errorf("restore to %s: %w", dst, err)
	}
	return info, nil
}

// chownLikeDir gives a file written by root the owner of its directory, so
// a service running as its own user (under systemd, hearth) can open it.
func chownLikeDir(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Chown(path, int(sys.Uid), int(sys.Gid))
}

func copyFile(src, dst string) error {
	return WriteFileAtomic(dst, 0o600, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}
