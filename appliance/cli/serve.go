package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/daemon"
)

// configFlags registers --config and one flag per config key (all of them,
// or only those named).
func configFlags(fs *flag.FlagSet, only ...string) {
	fs.String("config", "", "configuration file (default "+config.DefaultConfigFile+" when present; env HEARTH_CONFIG)")
	host := config.DetectHost(func(string) string { return "" })
	for _, k := range config.Keys() {
		if len(only) > 0 && !contains(only, k.Name) {
			continue
		}
		help := k.Help + " (env " + k.Env() + ")"
		if k.Kind == config.KindBool {
			fs.Bool(k.Flag(), k.Default(host) == "true", help)
		} else {
			fs.String(k.Flag(), k.Default(host), help)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loadConfig builds the effective configuration from the flags that were
// set, the environment and the file.
func loadConfig(env *Env, fs *flag.FlagSet) (*config.Config, error) {
	set := map[string]string{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() })
	file, required := set["config"], true
	if file == "" {
		file = env.Getenv("HEARTH_CONFIG")
		required = file != ""
	}
	delete(set, "config")
	return config.Load(config.Options{File: file, FileRequired: required, Getenv: env.Getenv, Flags: set,
		Host: config.DetectHost(env.Getenv)})
}

func newServeCommand() *command {
	return &command{
		name:    "serve",
		summary: "run the appliance (the default command)",
		long: "Serves the web app, the API and the realtime connection, and answers `hearth admin`\n" +
			"commands on a unix socket in the data directory. Stops cleanly on SIGINT or SIGTERM.",
		flags: func(fs *flag.FlagSet) { configFlags(fs) },
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("serve takes no arguments, got %q", args[0])
			}
			cfg, err := loadConfig(env, fs)
			if err != nil {
				return err
			}
			logger := newLogger(env, cfg.LogLevel)
			d, err := daemon.New(daemon.Options{Config: cfg, Logger: logger, Version: env.Version})
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}
}

func newLogger(env *Env, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if env.Getenv("JOURNAL_STREAM") != "" {
		// journald stamps every line itself.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(env.Stderr, opts))
}

func newVersionCommand() *command {
	var asJSON *bool
	return &command{
		name:    "version",
		summary: "print the version",
		flags:   func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print as JSON") },
		run: func(_ context.Context, env *Env, _ *flag.FlagSet, _ []string) error {
			info := map[string]string{"version": env.Version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						info["commit"] = s.Value
					}
				}
			}
			if *asJSON {
				return json.NewEncoder(env.Stdout).Encode(info)
			}
			fmt.Fprintf(env.Stdout, "hearth %s (%s, %s/%s)\n", info["version"], info["go"], info["os"], info["arch"])
			return nil
		},
	}
}

func newConfigCommand() *command {
	var asJSON *bool
	print := &command{
		name:    "print",
		summary: "show the effective configuration and where each value came from",
		flags: func(fs *flag.FlagSet) {
			configFlags(fs)
			asJSON = fs.Bool("json", false, "print as JSON")
		},
		run: func(_ context.Context, env *Env, fs *flag.FlagSet, _ []string) error {
			cfg, err := loadConfig(env, fs)
			if err != nil {
				return err
			}
			if *asJSON {
				return cfg.WriteJSON(env.Stdout)
			}
			return cfg.WriteTOML(env.Stdout)
		},
	}
	return &command{name: "config", summary: "inspect the configuration", subs: []*command{print}}
}
