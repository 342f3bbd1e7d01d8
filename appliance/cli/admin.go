package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hearth-home/hearth/appliance/admin"
	"github.com/hearth-home/hearth/appliance/auth"
	"github.com/hearth-home/hearth/appliance/daemon"
	"github.com/hearth-home/hearth/appliance/qrcode"
	"github.com/hearth-home/hearth/appliance/store"
)

// dataFlags are the flags every command that works on the data directory
// takes.
func dataFlags(fs *flag.FlagSet) { configFlags(fs, "data", "name", "listen", "tls", "url") }

// withOps reaches the daemon (or opens the database when none runs) and
// runs fn with the operations.
func withOps(env *Env, fs *flag.FlagSet, fn func(ops admin.Ops) error) error {
	cfg, err := loadConfig(env, fs)
	if err != nil {
		return err
	}
	ops, closeOps, err := admin.Connect(cfg.Data, func(st *store.Store) (*admin.Service, error) {
		a, err := auth.New(auth.Config{Store: st, SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax})
		if err != nil {
			return nil, err
		}
		return &admin.Service{Auth: a, Store: st, Version: env.Version, Data: cfg.Data, BaseURL: cfg.BaseURL()}, nil
	})
	if err != nil {
		return err
	}
	defer closeOps()
	return fn(ops)
}

func readPassword(env *Env, fromStdin bool) (string, error) {
	if !fromStdin {
		return "", usagef("give the password on standard input with --password-stdin (e.g. `echo ... | hearth admin user add NAME --password-stdin`)")
	}
	line, err := bufio.NewReader(env.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on standard input")
	}
	return pw, nil
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newAdminCommand() *command {
	return &command{
		name:    "admin",
		summary: "manage users and invites",
		long: "Admin commands talk to the running daemon over its unix socket in the data directory;\n" +
			"when it does not run, they open the database directly.",
		subs: []*command{newUserCommand(), newInviteCommand(), newSetupTokenCommand(), newTLSCommand()},
	}
}

func newUserCommand() *command {
	var isAdmin, pwStdin, asJSON, enable *bool
	var display *string
	add := &command{
		name: "add", args: "NAME", summary: "create an account",
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			isAdmin = fs.Bool("admin", false, "make the account an admin")
			display = fs.String("display-name", "", "name shown to others (default NAME)")
			pwStdin = fs.Bool("password-stdin", false, "read the password from the first line of standard input")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("user add takes one NAME")
			}
			pw, err := readPassword(env, *pwStdin)
			if err != nil {
				return err
			}
			role := auth.RoleMember
			if *isAdmin {
				role = auth.RoleAdmin
			}
			return withOps(env, fs, func(ops admin.Ops) error {
				u, err := ops.AddUser(ctx, auth.NewUser{Name: args[0], DisplayName: *display, Password: pw, Role: role})
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "created %s (%s)\n", u.Name, u.Role)
				return nil
			})
		},
	}
	passwd := &command{
		name: "passwd", args: "NAME", summary: "set an account's password and sign out its devices",
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			pwStdin = fs.Bool("password-stdin", false, "read the password from the first line of standard input")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("user passwd takes one NAME")
			}
			pw, err := readPassword(env, *pwStdin)
			if err != nil {
				return err
			}
			return withOps(env, fs, func(ops admin.Ops) error {
				if err := ops.SetPassword(ctx, args[0], pw); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "password set for %s; their devices are signed out\n", args[0])
				return nil
			})
		},
	}
	list := &command{
		name: "list", summary: "list accounts",
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			asJSON = fs.Bool("json", false, "print as JSON")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, _ []string) error {
			return withOps(env, fs, func(ops admin.Ops) error {
				users, err := ops.Users(ctx)
				if err != nil {
					return err
				}
				if *asJSON {
					if users == nil {
						users = []auth.User{}
					}
					return writeJSONOut(env.Stdout, users)
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDISPLAY NAME\tROLE\tSTATE\tCREATED")
				for _, u := range users {
					state := "active"
					if u.Disabled {
						state = "disabled"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.DisplayName, u.Role, state, u.Created.Local().Format("2006-01-02"))
				}
				return tw.Flush()
			})
		},
	}
	disable := &command{
		name: "disable", args: "NAME", summary: "disable an account (signs out its devices); --enable undoes it",
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			enable = fs.Bool("enable", false, "enable the account again")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("user disable takes one NAME")
			}
			return withOps(env, fs, func(ops admin.Ops) error {
				u, err := ops.SetDisabled(ctx, args[0], !*enable)
				if err != nil {
					return err
				}
				state := "disabled"
				if !u.Disabled {
					state = "enabled"
				}
				fmt.Fprintf(env.Stdout, "%s is %s\n", u.Name, state)
				return nil
			})
		},
	}
	return &command{name: "user", summary: "add, list, disable accounts and reset passwords", subs: []*command{add, passwd, list, disable}}
}

func newInviteCommand() *command {
	var uses *int
	var ttl *time.Duration
	var role *string
	var asJSON, listJSON *bool
	list := &command{
		name: "list", summary: "list invites",
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			listJSON = fs.Bool("json", false, "print as JSON")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, _ []string) error {
			return withOps(env, fs, func(ops admin.Ops) error {
				invs, err := ops.Invites(ctx)
				if err != nil {
					return err
				}
				if *listJSON {
					if invs == nil {
						invs = []auth.Invite{}
					}
					return writeJSONOut(env.Stdout, invs)
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tROLE\tUSED\tSTATUS\tEXPIRES\tBY")
				for _, i := range invs {
					fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", i.ID, i.Role, i.Used, i.Uses, i.Status, i.Expires.Local().Format("2006-01-02 15:04"), i.CreatedBy)
				}
				return tw.Flush()
			})
		},
	}
	revoke := &command{
		name: "revoke", args: "ID", summary: "revoke an invite",
		flags: dataFlags,
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("invite revoke takes one invite ID (see `hearth admin invite list`)")
			}
			return withOps(env, fs, func(ops admin.Ops) error {
				if err := ops.RevokeInvite(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "invite %s revoked\n", args[0])
				return nil
			})
		},
	}
	return &command{
		name: "invite", summary: "create an invite link (and QR code) for a new member",
		long: "Prints a link that lets someone pick a name and password and join.\nSubcommands: `list`, `revoke ID`.",
		subs: []*command{list, revoke},
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			uses = fs.Int("uses", 1, "how many people may join with it")
			ttl = fs.Duration("ttl", auth.DefaultInviteTTL, "how long it stays valid")
			role = fs.String("role", auth.RoleMember, "role of those who join: member, admin or guest")
			asJSON = fs.Bool("json", false, "print as JSON")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usagef("unknown invite subcommand %q (want list or revoke)", args[0])
			}
			return withOps(env, fs, func(ops admin.Ops) error {
				ni, err := ops.CreateInvite(ctx, admin.InviteRequest{Uses: *uses, TTL: *ttl, Role: *role})
				if err != nil {
					return err
				}
				if *asJSON {
					return writeJSONOut(env.Stdout, ni)
				}
				fmt.Fprintf(env.Stdout, "Invite link (%d use(s), valid until %s):\n\n  %s\n\n", ni.Invite.Uses,
					ni.Invite.Expires.Local().Format("2006-01-02 15:04"), ni.URL)
				if qr, err := qrcode.Terminal(ni.URL); err == nil {
					fmt.Fprint(env.Stdout, qr)
				}
				return nil
			})
		},
	}
}

func newSetupTokenCommand() *command {
	return &command{
		name: "setup-token", summary: "print the one-time token that creates the first admin",
		flags: dataFlags,
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, _ []string) error {
			return withOps(env, fs, func(ops admin.Ops) error {
				tok, err := ops.SetupToken(ctx)
				if errors.Is(err, auth.ErrAlreadySetUp) {
					return errors.New("hearth is already set up: sign in, or reset a password with `hearth admin user passwd NAME --password-stdin`")
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, tok)
				return nil
			})
		},
	}
}

func newTLSCommand() *command {
	var yes *bool
	reset := &command{
		name: "reset-ca", summary: "forget the local certificate authority; a new one is made at the next start",
		long: "Only for a damaged or lost CA key: every device must then trust the new CA again.\n" +
			"Hearth must be stopped.",
		flags: func(fs *flag.FlagSet) {
			dataFlags(fs)
			yes = fs.Bool("yes", false, "confirm that every device will need to trust the new CA")
		},
		run: func(ctx context.Context, env *Env, fs *flag.FlagSet, _ []string) error {
			if !*yes {
				return usagef("this makes every device distrust Hearth until it installs the new CA; run again with --yes")
			}
			cfg, err := loadConfig(env, fs)
			if err != nil {
				return err
			}
			if _, err := admin.Dial(filepath.Join(cfg.Data, admin.SocketName)); err == nil {
				return errors.New("hearth is running on this data directory; stop it first (sudo systemctl stop hearth)")
			}
			st, err := store.Open(filepath.Join(cfg.Data, store.FileName), store.Options{})
			if err != nil {
				return err
			}
			defer st.Close()
			if err := daemon.ResetCA(ctx, st); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "local CA forgotten; start hearth to make a new one, then install it on every device from http://<hearth>/")
			return nil
		},
	}
	return &command{name: "tls", summary: "manage Hearth's certificates", subs: []*command{reset}}
}
