package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certcache/certcache"
)

// leaseRow is one lease as leases -json prints it.
type leaseRow struct {
	Name    string     `json:"name"`
	Holder  string     `json:"holder"`            // the holder's whole token
	Expires *time.Time `json:"expires,omitempty"` // absent for a lease that never expires
	Expired bool       `json:"expired"`
}

// shortHolder is how much of a token the table shows: enough to tell
// holders apart, as a short commit hash is.
const shortHolder = 12

// runLeases is the leases command.
func runLeases(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("leases", "[-prefix NAME] [-json] URL",
		"Lists the leases held in the store: the locks through which a fleet's nodes\n"+
			"coordinate certificate orders (and certmagic's locks), with each holder's token\n"+
			"and when the lease runs out, judged by the store's clock. An expired lease that\n"+
			"the store still keeps is shown as expired; it is free for the next acquirer.\n"+
			"Redis forgets expired leases. Exit status 1 if the listing failed.", stdout, stderr)
	prefix := fs.String("prefix", "", "list only leases whose names begin with `NAME`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, code, ok := parseArgs(fs, args, 1, 1)
	if !ok {
		return code
	}
	c, closer, err := openCache(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "certcache leases: %v\n", err)
		return exitFail
	}
	defer closer.Close()
	rows, err := leaseRows(ctx, c, *prefix)
	if err != nil {
		fmt.Fprintf(stderr, "certcache leases: %v\n", err)
		return exitFail
	}
	if *asJSON {
		if err := writeJSON(stdout, rows); err != nil {
			fmt.Fprintf(stderr, "certcache leases: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHOLDER\tEXPIRES")
	now := time.Now()
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(r.Name), short(r.Holder), expiry(r, now))
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return exitOK
}

// leaseRows lists the leases of c that begin with prefix, sorted by name.
func leaseRows(ctx context.Context, c certcache.Cache, prefix string) ([]leaseRow, error) {
	rows := []leaseRow{} // [] rather than null in JSON
	now := time.Now()
	for l, err := range certcache.ListLeases(ctx, c, prefix) {
		if err != nil {
			return nil, err
		}
		r := leaseRow{Name: l.Name, Holder: l.Holder}
		if !l.Expires.IsZero() {
			t := l.Expires.UTC().Round(time.Millisecond)
			r.Expires, r.Expired = &t, !t.After(now)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b leaseRow) int { return strings.Compare(a.Name, b.Name) })
	return rows, nil
}

// short abbreviates a holder's token for the table.
func short(token string) string {
	if len(token) <= shortHolder+1 {
		return dash(token)
	}
	return token[:shortHolder] + "…"
}

// expiry says when r runs out, for people: "in 42s", "expired 3m ago".
func expiry(r leaseRow, now time.Time) string {
	switch {
	case r.Expires == nil:
		return "never"
	case r.Expired:
		return "expired " + until(*r.Expires, now)
	}
	return until(*r.Expires, now)
}

// state says in words whether r runs: "expires in 42s", "expired 3m ago".
func state(r leaseRow, now time.Time) string {
	switch {
	case r.Expires == nil:
		return "never expires"
	case r.Expired:
		return expiry(r, now)
	}
	return "expires " + expiry(r, now)
}

// runUnlock is the unlock command.
func runUnlock(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("unlock", "[-force] URL NAME",
		"Breaks the lease called NAME (see certcache leases), whoever holds it, so that\n"+
			"the next node to ask takes it. Without -force it breaks only a lease that has\n"+
			"expired by the store's clock, and refuses, with exit status 1, one that runs.\n"+
			"With -force it breaks a running lease too: use it for a holder that is gone.\n"+
			"A holder that is still alive learns it lost the lease at its next refresh, and\n"+
			"the work the lease guards (a certificate order) may run twice meanwhile.\n"+
			"A lease that is not held is not an error.", stdout, stderr)
	force := fs.Bool("force", false, "break the lease even if it has not expired")
	pos, code, ok := parseArgs(fs, args, 2, 2)
	if !ok {
		return code
	}
	name := pos[1]
	c, closer, err := openCache(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "certcache unlock: %v\n", err)
		return exitFail
	}
	defer closer.Close()
	// The listing only words the messages; BreakLease decides, in the
	// store, whether the lease may be broken.
	var held *leaseRow
	if rows, err := leaseRows(ctx, c, name); err == nil {
		if i := slices.IndexFunc(rows, func(r leaseRow) bool { return r.Name == name }); i >= 0 {
			held = &rows[i]
		}
	}
	err = certcache.BreakLease(ctx, c, name, *force)
	switch {
	case errors.Is(err, certcache.ErrLeaseHeld):
		if held != nil {
			fmt.Fprintf(stderr, "certcache unlock: %s is held by %s and %s\n", printable(name), short(held.Holder), state(*held, time.Now()))
		} else {
			fmt.Fprintf(stderr, "certcache unlock: %v\n", err)
		}
		fmt.Fprintf(stderr, "certcache unlock: not broken; wait for it to expire, or use -force if its holder is gone\n")
		return exitFail
	case err != nil:
		fmt.Fprintf(stderr, "certcache unlock: %v\n", err)
		return exitFail
	case held == nil:
		fmt.Fprintf(stdout, "%s is not held\n", printable(name))
	default:
		fmt.Fprintf(stdout, "unlocked %s (held by %s, which %s)\n", printable(name), short(held.Holder), state(*held, time.Now()))
	}
	return exitOK
}
