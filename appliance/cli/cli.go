package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Version        string
}

// command is one node of the command tree.
type command struct {
	name    string
	args    string // usage of positional arguments, e.g. "NAME"
	summary string
	long    string
	flags   func(fs *flag.FlagSet)
	run     func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error
	subs    []*command
}

// usageError is a mistake in how a command was called (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Main runs the hearth command with args (without the program name) and
// returns the process exit status.
func Main(args []string, env *Env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	err := root.exec(ctx, env, args, "hearth")
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "hearth: %s\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(env.Stderr, "hearth: %s\n", err)
		return 1
	}
}

func newRoot() *command {
	serve := newServeCommand()
	return &command{
		name:    "hearth",
		summary: "a home appliance for chat, voice and file transfer",
		long: "Hearth is one program a household runs on a small box. With no command it runs `serve`.\n" +
			"Each serve flag is also a config file key and an environment variable HEARTH_<KEY>.",
		subs: []*command{serve, newVersionCommand(), newConfigCommand(), newAdminCommand(), newBackupCommand(), newRestoreCommand(), newDoctorCommand(),
			newLoginCommand(), newSendCommand(), newReceiveCommand()},
		run: func(ctx context.Context, env *Env, _ *flag.FlagSet, args []string) error {
			return serve.exec(ctx, env, args, "hearth serve")
		},
	}
}

// exec parses flags (which may come before, between or after positional
// arguments) and runs the command or the named subcommand.
func (c *command) exec(ctx context.Context, env *Env, args []string, path string) error {
	if len(c.subs) > 0 && len(args) > 0 {
		a := args[0]
		if !strings.HasPrefix(a, "-") {
			for _, s := range c.subs {
				if s.name == a {
					return s.exec(ctx, env, args[1:], path+" "+s.name)
				}
			}
			if a == "help" && len(args) > 1 {
				return c.exec(ctx, env, append(args[1:], "--help"), path)
			}
			if a == "help" {
				c.usage(env.Stdout, path, nil)
				return nil
			}
			return usagef("unknown command %q for %s; see `%s --help`", a, path, path)
		}
		if isHelp(a) && (c.run == nil || c.name == "hearth") {
			c.usage(env.Stdout, path, nil)
			return flag.ErrHelp
		}
	}
	if c.run == nil {
		c.usage(env.Stderr, path, nil)
		return usagef("%s needs a command", path)
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.usage(env.Stdout, path, fs)
		return err
	}
	if err != nil {
		return usagef("%s: %v; see `%s --help`", path, err, path)
	}
	return c.run(ctx, env, fs, pos)
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// parseInterleaved parses flags anywhere among the arguments; "--" ends
// flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (c *command) usage(w io.Writer, path string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s — %s\n\nUsage:\n  %s", path, c.summary, path)
	if len(c.subs) > 0 {
		fmt.Fprint(w, " COMMAND")
	}
	if fs != nil {
		fmt.Fprint(w, " [flags]")
	}
	if c.args != "" {
		fmt.Fprint(w, " "+c.args)
	}
	fmt.Fprintln(w)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", c.long)
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-12s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun `%s COMMAND --help` for a command's flags.\n", path)
	}
	if fs != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if len(names) > 0 {
			sort.Strings(names)
			fmt.Fprintln(w, "\nFlags:")
			for _, n := range names {
				f := fs.Lookup(n)
				def := ""
				if f.DefValue != "" && f.DefValue != "false" {
					def = fmt.Sprintf(" (default %s)", f.DefValue)
				}
				fmt.Fprintf(w, "  --%-16s %s%s\n", n, f.Usage, def)
			}
		}
	}
}
