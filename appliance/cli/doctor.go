package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/store"
)

func newDoctorCommand() *command {
	var asJSON *bool
	return &command{
		name: "doctor", summary: "check ports, TLS, mDNS, disk, clock and the database, and say how to fix problems",
		flags: func(fs *flag.FlagSet) {
			configFlags(fs)
			asJSON = fs.Bool("json", false, "print as JSON")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, _ []string) error {
			cfg, err := loadConfig(env, fs)
			if err != nil {
				return err
			}
			checks := doctorChecks(ctx, cfg)
			if *asJSON {
				if err := writeJSONOut(env.Stdout, checks); err != nil {
					return err
				}
			} else {
				printChecks(env.Stdout, checks)
			}
			for _, c := range checks {
				if c.Status == admin.CheckFail {
					return errors.New("some checks failed")
				}
			}
			return nil
		},
	}
}

func doctorChecks(ctx context.Context, cfg *config.Config) []admin.Check {
	c, err := admin.Dial(filepath.Join(cfg.Data, admin.SocketName))
	if err == nil {
		checks, err := c.Doctor(ctx)
		if err == nil {
			return append([]admin.Check{{Name: "daemon", Status: admin.CheckOK, Detail: "running"}}, checks...)
		}
		return []admin.Check{{Name: "daemon", Status: admin.CheckFail, Detail: err.Error(), Fix: "restart it: sudo systemctl restart hearth"}}
	}
	checks := []admin.Check{{Name: "daemon", Status: admin.CheckWarn, Detail: "not running", Fix: "sudo systemctl start hearth (or hearth serve)"}}
	checks = append(checks, admin.PortCheck("listen", cfg.Listen))
	if cfg.TLS != config.TLSOff {
		checks = append(checks, admin.PortCheck("http_listen", cfg.HTTPListen))
	}
	dbPath := filepath.Join(cfg.Data, store.FileName)
	st, err := store.Open(dbPath, store.Options{})
	if err != nil {
		return append(checks, admin.Check{Name: "database", Status: admin.CheckFail, Detail: err.Error(),
			Fix: "restore a backup with `hearth restore FILE`, or check --data"}, admin.DiskCheck(cfg.Data), admin.ClockCheck(time.Now()))
	}
	defer st.Close()
	a, err := auth.New(auth.Config{Store: st})
	if err != nil {
		return append(checks, admin.Check{Name: "database", Status: admin.CheckFail, Detail: err.Error()})
	}
	svc := &admin.Service{Auth: a, Store: st, Data: cfg.Data, BaseURL: cfg.BaseURL()}
	more, _ := svc.Doctor(ctx)
	return append(checks, more...)
}

func printChecks(w io.Writer, checks []admin.Check) {
	mark := map[string]string{admin.CheckOK: "ok  ", admin.CheckWarn: "WARN", admin.CheckFail: "FAIL"}
	for _, c := range checks {
		fmt.Fprintf(w, "%s  %-12s %s\n", mark[c.Status], c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "      %-12s fix: %s\n", "", c.Fix)
		}
	}
}
