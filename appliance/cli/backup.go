package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/store"
)

func newBackupCommand() *command {
	return &command{
		name: "backup", args: "FILE", summary: "write a consistent snapshot of the database to FILE",
		long:  "Works while hearth serve runs (through its admin socket) and when it does not.\nThe snapshot is verified before the command reports success.",
		flags: dataFlags,
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("backup takes one FILE")
			}
			dst, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			start := time.Now()
			var n int64
			err = withOps(env, fs, func(ops admin.Ops) error {
				return store.WriteFileAtomic(dst, 0o600, func(w io.Writer) error {
					var err error
					n, err = ops.Backup(ctx, w)
					return err
				})
			})
			if err != nil {
				return fmt.Errorf("backup to %s: %w", dst, err)
			}
			info, err := store.Verify(dst)
			if err != nil {
				os.Remove(dst)
				return fmt.Errorf("backup to %s failed verification and was removed: %w", dst, err)
			}
			fmt.Fprintf(env.Stdout, "backup written to %s (%s, schema %d) in %s\n", dst, admin.BytesText(n), info.SchemaVersion, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func newRestoreCommand() *command {
	return &command{
		name: "restore", args: "FILE", summary: "replace the database with a backup (hearth must be stopped)",
		long: "Verifies FILE first; the current database is kept beside it as hearth.db.before-restore-TIME.\n" +
			"Stop the service first: `sudo systemctl stop hearth`.",
		flags: dataFlags,
		run: func(_ context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("restore takes one FILE")
			}
			cfg, err := loadConfig(env, fs)
			if err != nil {
				return err
			}
			if _, err := admin.Dial(filepath.Join(cfg.Data, admin.SocketName)); err == nil {
				return errors.New("hearth is running on this data directory; stop it first (sudo systemctl stop hearth)")
			}
			dst := filepath.Join(cfg.Data, store.FileName)
			info, err := store.Restore(args[0], dst, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "restored %s from %s (%s, schema %d); start hearth again\n", dst, args[0], admin.BytesText(info.Size), info.SchemaVersion)
			return nil
		},
	}
}
