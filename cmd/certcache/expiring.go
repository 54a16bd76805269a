package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// defaultWithin is expiring's default window. autocert renews a
// certificate 30 days before it expires (a third of its lifetime for
// shorter ones), so one with less than 21 days left has failed to renew for
// over a week.
const defaultWithin = 21 * 24 * time.Hour

// window is a flag.Value for a duration that also takes days: "21d",
// "1d12h", as well as any Go duration ("36h", "90m").
type window time.Duration

func (w *window) String() string {
	d := time.Duration(*w)
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (w *window) Set(s string) error {
	d, err := parseWindow(s)
	if err != nil {
		return err
	}
	*w = window(d)
	return nil
}

// parseWindow parses a Go duration with an optional leading count of days:
// "21d", "1.5d", "1d12h", "36h". It must not be negative.
func parseWindow(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid window %q: want e.g. 21d, 36h or 1d12h", s)
	var days time.Duration
	rest := s
	if num, after, ok := strings.Cut(s, "d"); ok {
		if !dayCount.MatchString(num) {
			return 0, bad
		}
		n, err := strconv.ParseFloat(num, 64)
		if err != nil || n > 100*365 {
			return 0, bad
		}
		days, rest = time.Duration(n*float64(24*time.Hour)), after
		if rest == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || d < 0 {
		return 0, bad
	}
	return days + d, nil
}

// dayCount is the number before "d" in a window.
var dayCount = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// runExpiring is the expiring command.
func runExpiring(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("expiring", "[-within 21d] [-filter GLOB] [-json] URL",
		"Lists the certificates in the cache that expire within the window (or have\n"+
			"expired), soonest first. For monitoring: the exit status is 1 if there is any,\n"+
			"and also if the cache could not be read; 0 means every certificate was read\n"+
			"and none expires within the window. A value that is not a certificate is\n"+
			"reported on stderr without changing the exit status.", stdout, stderr)
	within := window(defaultWithin)
	fs.Var(&within, "within", "the window: a Go `duration` or days (21d, 1d12h, 36h)")
	filter := fs.String("filter", "", "only keys matching this shell `pattern`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	c, closer, g, code, ok := openListing(ctx, "expiring", fs, args, filter, stderr)
	if !ok {
		return code
	}
	defer closer.Close()

	now := time.Now()
	infos, err := describe(ctx, c, g, now, kind.isCert)
	if err != nil {
		fmt.Fprintf(stderr, "certcache expiring: %v\n", err)
		return exitFail
	}
	deadline := now.Add(time.Duration(within))
	expiring := []keyInfo{}
	code = exitOK
	for _, info := range infos {
		switch {
		case !info.Kind.isCert():
		case info.Error != "":
			fmt.Fprintf(stderr, "certcache expiring: %s\n", info.Error)
			code = exitFail // not checked: as bad as expiring, for a monitor
		case info.NotAfter == nil:
			fmt.Fprintf(stderr, "certcache expiring: %s: %s\n", info.Key, strings.Join(info.Problems, "; "))
		case info.NotAfter.Before(deadline):
			expiring = append(expiring, info)
		}
	}
	// Soonest first: what needs attention first.
	sortByExpiry(expiring)
	if len(expiring) > 0 {
		code = exitFail
	}
	if *asJSON {
		if err := writeJSON(stdout, expiring); err != nil {
			return exitFail
		}
		return code
	}
	if len(expiring) == 0 {
		fmt.Fprintf(stdout, "no certificate expires within %s\n", within.String())
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNOT AFTER\tLEFT\tISSUER\tDNS NAMES")
	for _, info := range expiring {
		left := until(*info.NotAfter, now)
		if !info.NotAfter.After(now) {
			left = "expired " + left
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(info.Key), info.NotAfter.Format(time.RFC3339), left,
			dash(info.Issuer), dash(strings.Join(info.DNSNames, ",")))
	}
	tw.Flush()
	return code
}

func sortByExpiry(infos []keyInfo) {
	// Stable: equal expiries stay in key order (infos come sorted by key).
	slices.SortStableFunc(infos, func(a, b keyInfo) int { return a.NotAfter.Compare(*b.NotAfter) })
}
