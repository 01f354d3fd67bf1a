package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/adapters/mongo"
)

const adminUsage = `usage: integr8scode admin <command> [flags]

Accounts are managed here, on the machine, and never through the API: the
first admin comes from create-user. The password is read from standard
input (one line; typed without echo on a terminal), never from a flag.

commands:
  create-user   --username U [--role user|admin]: create an account
  set-password  --username U: replace an account's password (ends a lockout)
  unlock        --username U: end the lockout of a username after failed sign-ins
  rotate-token-key
                add a new signing key for access tokens and make it the
                active one (running API processes switch to it within 10 s)

Where the accounts are: --mongodb-uri (and --mongodb-database), or the data
directory of an integr8scode up (--data-dir), running or stopped.
`

func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) < 1 {
		fmt.Fprint(stderr, adminUsage)
		return 2, nil
	}
	switch args[0] {
	case "create-user", "set-password", "unlock":
		return runAdminUser(ctx, args[0], args[1:], getenv, stdin, stdout, stderr)
	case "rotate-token-key":
		return runRotateTokenKey(args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, adminUsage)
		return 0, nil
	}
	fmt.Fprintf(stderr, "unknown admin command %q\n\n%s", args[0], adminUsage)
	return 2, nil
}

func runAdminUser(ctx context.Context, cmd string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.DataDir, "data-dir", "./data", "data directory of `integr8scode up` (used when --mongodb-uri is not given)")
	fs.StringVar(&c.MongoURI, "mongodb-uri", "", "MongoDB connection URI of the platform's store")
	fs.StringVar(&c.MongoDatabase, "mongodb-database", "integr8scode", "MongoDB database name")
	username := fs.String("username", "", "the account's username (required)")
	role := "user"
	if cmd == "create-user" {
		fs.StringVar(&role, "role", "user", "user or admin")
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	if *username == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "--username is required (and nothing else: the password comes from standard input)")
		return 2, nil
	}
	var password string
	if cmd != "unlock" {
		var err error
		if password, err = readPassword(stdin, stderr); err != nil {
			return 1, err
		}
	}
	db, closeDB, err := openAccountsStore(ctx, c)
	if err != nil {
		return 1, err
	}
	defer closeDB()
	svc, err := accounts.New(accounts.Config{Store: mongo.NewAccounts(db),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 1, err
	}
	if cmd == "unlock" {
		if err := svc.Unlock(ctx, *username); err != nil {
			return 1, err
		}
		fmt.Fprintf(stdout, "username %s may sign in again\n", *username)
		return 0, nil
	}
	var u accounts.User
	if cmd == "create-user" {
		u, err = svc.CreateUser(ctx, *username, password, accounts.Role(role))
	} else {
		u, err = svc.SetPassword(ctx, *username, password)
	}
	if err != nil {
		return 1, fmt.Errorf("%s: %s", cmd, strings.TrimPrefix(err.Error(), "unprocessable: "))
	}
	verb := "created"
	if cmd == "set-password" {
		verb = "has a new password:"
	}
	fmt.Fprintf(stdout, "%s %s %s (id %s, role %s)\n", "account", u.Username, verb, u.ID, u.Role)
	return 0, nil
}

// readPassword reads one line: without echo from a terminal, as is from a pipe.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input (echo it in, or type it on a terminal)")
	}
	return line, nil
}

// openAccountsStore opens the database that holds the accounts: the
// given URI; else the data directory's embedded store, opened by this
// process when the platform is stopped, or reached through the address
// that a running `up` wrote into the directory (stores.env).
func openAccountsStore(ctx context.Context, c config) (*mongo.DB, func(), error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	fail := func(err error) (*mongo.DB, func(), error) { closeAll(); return nil, nil, err }
	uri := c.MongoURI
	var emb *mongo.Embedded
	if uri == "" {
		dir, err := filepath.Abs(c.DataDir)
		if err != nil {
			return fail(err)
		}
		unlock, err := lockDataDir(dir)
		if err == nil {
			closers = append(closers, func() error { unlock(); return nil })
			quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
			if emb, err = mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: filepath.Join(dir, "mongo"), Logger: quiet}); err != nil {
				return fail(err)
			}
			closers = append(closers, emb.Close)
			uri = emb.URI()
		} else if uri, err = runningStoreURI(dir); err != nil {
			return fail(err)
		}
	}
	client, err := mongo.Connect(ctx, uri)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() error { return client.Disconnect(context.Background()) })
	db, err := openDB(ctx, client, emb, c.MongoDatabase)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, db.Close)
	return db, closeAll, nil
}

// storesFile is where a running `up` writes how to reach its embedded
// stores (the same lines `integr8scode stores` prints), 0600 in the 0700
// data directory: whoever may read the directory may connect, no other.
const storesFile = "stores.env"

func runningStoreURI(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, storesFile))
	if err != nil {
		return "", fmt.Errorf("the platform in %s is running but its %s cannot be read (%v); pass --mongodb-uri", dir, storesFile, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "INTEGR8SCODE_MONGODB_URI="); ok {
			return shellUnquote(v), nil
		}
	}
	return "", fmt.Errorf("%s in %s names no MongoDB URI; pass --mongodb-uri", storesFile, dir)
}

// shellUnquote undoes shellQuote.
func shellUnquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		s = s[1 : len(s)-1]
	}
	return strings.ReplaceAll(s, `'\''`, "'")
}

func runRotateTokenKey(args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("admin rotate-token-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.DataDir, "data-dir", "./data", "data directory whose auth-keys to rotate")
	fs.StringVar(&c.AuthKeys, "auth-keys", "", "the token keys directory (default: auth-keys in --data-dir)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	dir := c.authKeys()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 1, err
	}
	id, err := keyring.RotateTokenKey(dir)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "new token signing key %s in %s; running API processes sign with it within 10 s\n", id, dir)
	return 0, nil
}
