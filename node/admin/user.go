package admin

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
)

const userUsage = `Usage: signpost user <add|list|token|rotate|remove> --data DIR [flags]

  add     --name N --role R [--password-stdin]   add a user; the password is
                                                 read from the first line of stdin
  list                                           list users and API tokens (with
                                                 their expiry)
  token   --name N --role R [--valid-for 90d]    create an API token for a system
                                                 and print it (shown only once)
  rotate  --name N [--valid-for 90d]             replace an API token with a new one
                                                 (printed once); the old one stops
                                                 working at once
  quota   --name N --daily-lookups N             set an API token's daily lookup quota
                                                 (0: the node's daily_token_lookups)
  remove  --name N [--token]                     remove a user (or an API token)

Roles: practitioner, operator, auditor.
`

// UserMain is `signpost user`: it manages the local user accounts and API
// tokens in <data dir>/users.json.
func UserMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, userUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("signpost user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", ".", "the node's data directory")
	name := fs.String("name", "", "user or token name")
	role := fs.String("role", "", "practitioner, operator or auditor")
	pwStdin := fs.Bool("password-stdin", false, "read the password from stdin without prompting")
	isToken := fs.Bool("token", false, "remove: the name is an API token's")
	daily := fs.Int("daily-lookups", -1, "quota: the token's daily lookup quota (0: the node's daily_token_lookups)")
	validFor := node.DurationOf(auth.DefaultTokenTTL)
	fs.TextVar(&validFor, "valid-for", validFor, "token, rotate: how long the token is valid (\"90d\", \"36h\"; at most 732d)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "signpost user %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	store, err := auth.OpenStore(filepath.Join(*data, auth.UsersFileName), argonParams, time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "signpost user: %v\n", err)
		return 1
	}
	needName := func() bool {
		if *name == "" {
			fmt.Fprintf(stderr, "signpost user %s: --name is required\n", sub)
			return false
		}
		return true
	}
	needRole := func() (auth.Role, bool) {
		r, err := auth.ParseRole(*role)
		if err != nil {
			fmt.Fprintf(stderr, "signpost user %s: --role: %v\n", sub, err)
			return "", false
		}
		return r, true
	}
	switch sub {
	case "add":
		if !needName() {
			return 2
		}
		r, ok := needRole()
		if !ok {
			return 2
		}
		if !*pwStdin {
			fmt.Fprintf(stderr, "Password for %s (at least %d characters; it is read from stdin and may echo): ", *name, auth.MinPasswordLen)
		}
		pw, err := readLine(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "signpost user add: reading the password: %v\n", err)
			return 1
		}
		u, err := store.AddUser(*name, r, pw)
		if err != nil {
			fmt.Fprintf(stderr, "signpost user add: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "added user %s (%s)\n", u.Name, u.Role)
		return 0
	case "list":
		users, err := store.Users()
		if err != nil {
			fmt.Fprintf(stderr, "signpost user list: %v\n", err)
			return 1
		}
		toks, err := store.Tokens()
		if err != nil {
			fmt.Fprintf(stderr, "signpost user list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNAME\tROLE\tCREATED\tEXPIRES\tDAILY LOOKUPS")
		for _, u := range users {
			fmt.Fprintf(tw, "user\t%s\t%s\t%s\t-\tnode default\n", u.Name, u.Role, u.Created.Format(time.RFC3339))
		}
		now := time.Now()
		for _, t := range toks {
			exp := t.ExpiresAt().Format(time.RFC3339)
			if !now.Before(t.ExpiresAt()) {
				exp += " (expired; signpost user rotate --name " + t.Name + ")"
			}
			quota := "node default"
			if t.DailyLookups > 0 {
				quota = strconv.Itoa(t.DailyLookups)
			}
			fmt.Fprintf(tw, "token\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.Created.Format(time.RFC3339), exp, quota)
		}
		tw.Flush()
		return 0
	case "token":
		if !needName() {
			return 2
		}
		r, ok := needRole()
		if !ok {
			return 2
		}
		secret, t, err := store.AddTokenFor(*name, r, validFor.D())
		if err != nil {
			fmt.Fprintf(stderr, "signpost user token: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "API token created, valid until %s; it is shown only now. Send it as 'Authorization: Bearer <token>'.\n", t.ExpiresAt().Format(time.RFC3339))
		fmt.Fprintln(stdout, secret)
		return 0
	case "rotate":
		if !needName() {
			return 2
		}
		secret, t, err := store.RotateToken(*name, validFor.D())
		if err != nil {
			fmt.Fprintf(stderr, "signpost user rotate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "API token %s replaced; the old one no longer works. The new one is valid until %s and shown only now.\n", t.Name, t.ExpiresAt().Format(time.RFC3339))
		fmt.Fprintln(stdout, secret)
		return 0
	case "quota":
		if !needName() {
			return 2
		}
		if *daily < 0 {
			fmt.Fprintln(stderr, "signpost user quota: --daily-lookups N is required (0: the node's daily_token_lookups)")
			return 2
		}
		if err := store.SetTokenQuota(*name, *daily); err != nil {
			fmt.Fprintf(stderr, "signpost user quota: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "API token %s: daily lookup quota %d (0: the node's daily_token_lookups)\n", *name, *daily)
		return 0
	case "remove":
		if !needName() {
			return 2
		}
		remove, what := store.RemoveUser, "user"
		if *isToken {
			remove, what = store.RemoveToken, "API token"
		}
		if err := remove(*name); err != nil {
			fmt.Fprintf(stderr, "signpost user remove: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "removed %s %s\n", what, *name)
		return 0
	default:
		fmt.Fprintf(stderr, "signpost user: unknown subcommand %q\n\n%s", sub, userUsage)
		return 2
	}
}

// readLine reads one line (at most 1 KiB) without its line ending.
func readLine(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, 1<<10), 1<<10)
	line, err := br.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no password on stdin")
		}
		return nil, err
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}

// argonParams is the cost of new password hashes; tests lower it.
var argonParams = auth.DefaultArgon2Params
