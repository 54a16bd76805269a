package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/certcache/certcache"
	// Every backend and wrapper, so that any URL opens.
	_ "github.com/certcache/certcache/azblob"
	_ "github.com/certcache/certcache/dynamodb"
	_ "github.com/certcache/certcache/encrypt"
	_ "github.com/certcache/certcache/gs"
	_ "github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
	goredis "github.com/redis/go-redis/v9"
)

func main() {
	// go-redis logs each failed dial to stderr; the command reports the
	// same failure once, in its own error.
	goredis.SetLogger(discardRedisLog{})
	// An interrupt cancels the work in flight; cp then prints what it did,
	// so that running it again finishes the copy.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // a failure, or for expiring, a certificate in the window
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order usage shows them. It is
// filled in init because help refers to it.
var commands []command

func init() {
	commands = []command{
		{"ls", "list every key with its kind; certificates with names, expiry, issuer, key type", runLs},
		{"inspect", "show a certificate's chain and key type; check the key matches the leaf", runInspect},
		{"cp", "copy every key (or those matching -filter) from one cache to another", runCp},
		{"rm", "delete keys", runRm},
		{"leases", "list the leases (locks) held in the store, with holder and expiry", runLeases},
		{"unlock", "break a lease: one that expired, or with -force one that runs", runUnlock},
		{"expiring", "list certificates expiring within a window; exit status 1 if any", runExpiring},
		{"demo", "obtain a real certificate from Pebble, inside this process, into a cache", runDemo},
		{"help", "show the usage of a command", runHelp},
	}
}

// run runs the command line args (without the program name) and returns the
// exit status. It is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "certcache: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: certcache <command> [flags] [arguments]\n\n")
	fmt.Fprintf(w, "Manages what autocert keeps in a certcache cache, on any backend, by URL\n")
	fmt.Fprintf(w, "(file:///var/lib/autocert, redis://host:6379/0, postgres://…, s3://bucket/prefix, …).\n\n")
	fmt.Fprintf(w, "Commands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun certcache <command> -h for a command's flags. Exit status: 0 success,\n")
	fmt.Fprintf(w, "1 failure (expiring: a certificate in the window), 2 usage error.\n")
}

// runHelp prints a command's usage.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	if args[0] == "help" {
		fmt.Fprintln(stdout, "usage: certcache help [command]")
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, []string{"-h"}, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "certcache help: unknown command %q\n", args[0])
	return exitUsage
}

// flagSet is a subcommand's flags: a flag.FlagSet whose -h prints the usage
// to stdout, as a requested help should, and whose errors go to stderr.
type flagSet struct {
	*flag.FlagSet
	stdout, stderr io.Writer
}

// newFlagSet returns the flags of a subcommand whose usage line names its
// arguments, and whose description follows.
func newFlagSet(name, argsUsage, description string, stdout, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("certcache "+name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: certcache %s %s\n\n%s\n", name, argsUsage, description)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseArgs parses args with fs, allowing flags after the arguments too
// ("cp SRC DST -dry-run"), as the usage lines show them; "--" ends the
// flags. It returns the arguments and whether to go on; if not, code is the
// exit status: 0 after -h (the usage went to stdout), 2 for a usage error
// (reported on stderr). min and max bound the number of arguments; max < 0
// means no bound.
func parseArgs(fs *flagSet, args []string, min, max int) (pos []string, code int, ok bool) {
	if asksHelp(args) {
		fs.SetOutput(fs.stdout) // where the flag package prints the usage for -h
	}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false // the flag package printed the usage
		}
		if err != nil {
			return nil, exitUsage, false // the flag package printed the error and usage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		fmt.Fprintf(fs.stderr, "%s: missing arguments\n", fs.Name())
	case max >= 0 && len(pos) > max:
		fmt.Fprintf(fs.stderr, "%s: too many arguments: %s\n", fs.Name(), strings.Join(pos[max:], " "))
	default:
		return pos, exitOK, true
	}
	fs.Usage()
	return nil, exitUsage, false
}

// asksHelp reports whether args hold -h or -help before any "--".
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

// openCache opens rawURL for the command. Issuance coordination is turned
// off: the command never orders a certificate, and a coordinated Get that
// misses a certificate would take the fleet's order lease for it. A memory
// front (memory=true) is looked through: the command must see the store,
// not a copy in this process (cp reads each value back to verify it).
// openListing parses the arguments of ls and expiring (one URL), compiles
// their -filter pattern (filter is read after parsing) and opens the cache. When ok is false, the error is
// on stderr and code is the exit status.
func openListing(ctx context.Context, cmd string, fs *flagSet, args []string, filter *string, stderr io.Writer) (c certcache.Cache, closer io.Closer, g *glob, code int, ok bool) {
	pos, code, ok := parseArgs(fs, args, 1, 1)
	if !ok {
		return nil, nil, nil, code, false
	}
	g, err := newGlob(*filter)
	if err != nil {
		fmt.Fprintf(stderr, "certcache %s: -filter: %v\n", cmd, err)
		return nil, nil, nil, exitUsage, false
	}
	c, closer, err = openCache(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "certcache %s: %v\n", cmd, err)
		return nil, nil, nil, exitFail, false
	}
	return c, closer, g, 0, true
}

// Closing the returned closer closes everything Open opened.
func openCache(ctx context.Context, rawURL string) (c certcache.Cache, closer io.Closer, err error) {
	top, err := certcache.Open(ctx, rawURL)
	if err != nil {
		return nil, nil, err
	}
	return authority(certcache.Uncoordinated(top)), top, nil
}

// authority returns the tier of a layered stack that holds the data: the
// last one, as certcache.List also finds it. Other caches are returned as
// they are.
func authority(c certcache.Cache) certcache.Cache {
	for range 16 {
		s, ok := c.(interface{ Unwrap() []certcache.Cache })
		if !ok {
			return c
		}
		tiers := s.Unwrap()
		if len(tiers) == 0 {
			return c
		}
		c = tiers[len(tiers)-1]
	}
	return c
}

// writeJSON writes v to w, indented, for -json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
