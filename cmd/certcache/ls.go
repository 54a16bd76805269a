package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/certkey"
	"golang.org/x/crypto/acme/autocert"
)

// keyInfo describes one key for ls and expiring. Only what can be said
// about a value is kept, never the value: a listing of 100,000 keys holds
// 100,000 of these, not 100,000 values.
type keyInfo struct {
	Key       string     `json:"key"`
	Kind      kind       `json:"kind"`
	Size      int64      `json:"size"`               // as stored (a sealed value counts its overhead)
	Modified  *time.Time `json:"modified,omitempty"` // by the store's clock, if it keeps one
	DNSNames  []string   `json:"dns_names,omitempty"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	Issuer    string     `json:"issuer,omitempty"`
	KeyType   string     `json:"key_type,omitempty"`
	// Problems lists what autocert would refuse in the value, "not a
	// certificate: …" included.
	Problems []string `json:"problems,omitempty"`
	// Error is set when the value could not be read (the store failed, or
	// an encrypted value did not open).
	Error string `json:"error,omitempty"`

	domain string
}

// readValues is how many values ls and expiring read at once: enough to
// hide a remote store's round trip, few enough not to crowd it.
const readValues = 8

// describe lists the keys of c that g matches and describes each, reading
// the values of the kinds for which read is true, readValues at a time. The
// listing streams; the result, sorted by key, holds descriptions only. A
// key that disappears between the listing and the read is left out. It
// fails only if the listing fails; a value that cannot be read is described
// with its Error.
func describe(ctx context.Context, c certcache.Cache, g *glob, now time.Time, read func(kind) bool) ([]keyInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		i    int
		info keyInfo
	}
	var (
		mu    sync.Mutex
		infos []keyInfo
		gone  = map[int]bool{}
		wg    sync.WaitGroup
		jobs  = make(chan job)
	)
	for range readValues {
		wg.Go(func() {
			for j := range jobs {
				found := describeValue(ctx, c, &j.info, now)
				mu.Lock()
				infos[j.i] = j.info
				if !found {
					gone[j.i] = true
				}
				mu.Unlock()
			}
		})
	}
	var listErr error
	for e, err := range certcache.List(ctx, c, g.prefix) {
		if err != nil {
			listErr = err
			break
		}
		if !g.match(e.Key) {
			continue
		}
		info := keyInfo{Key: e.Key, Size: e.Size}
		info.Kind, info.domain = classify(e.Key)
		if !e.ModTime.IsZero() {
			t := e.ModTime.UTC()
			info.Modified = &t
		}
		mu.Lock()
		i := len(infos)
		infos = append(infos, info)
		mu.Unlock()
		if read(info.Kind) {
			select {
			case jobs <- job{i, info}:
			case <-ctx.Done():
			}
		}
	}
	close(jobs)
	wg.Wait()
	if listErr != nil {
		return nil, listErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := infos[:0]
	for i, info := range infos {
		if !gone[i] {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b keyInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// describeValue reads info's value and fills in what it says. It returns
// false if the key no longer exists.
func describeValue(ctx context.Context, c certcache.Cache, info *keyInfo, now time.Time) bool {
	data, err := c.Get(ctx, info.Key)
	if err == autocert.ErrCacheMiss {
		return false
	}
	if err != nil {
		info.Error = err.Error()
		return true
	}
	switch {
	case info.Kind.isCert():
		v, err := certkey.Parse(data)
		if err != nil {
			info.Problems = []string{err.Error()}
			return true
		}
		leaf := v.Chain[0]
		nb, na := leaf.NotBefore.UTC(), leaf.NotAfter.UTC()
		info.DNSNames, info.NotBefore, info.NotAfter = leaf.DNSNames, &nb, &na
		info.Issuer = issuerName(leaf.Issuer.CommonName, leaf.Issuer.String())
		info.KeyType = v.KeyType
		info.Problems = v.Problems(info.Key, now)
	case info.Kind == kindAccountKey:
		k, err := certkey.ParseAccountKey(data)
		if err != nil {
			info.Problems = []string{"not an account key: " + err.Error()}
			return true
		}
		info.KeyType = certkey.KeyType(k.Public())
	}
	return true
}

func issuerName(cn, full string) string {
	if cn != "" {
		return cn
	}
	return full
}

// runLs is the ls command.
func runLs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ls", "[-filter GLOB] [-json] URL",
		"Lists every key in the cache, sorted, with its kind: certificate (DOMAIN), RSA\n"+
			"certificate (DOMAIN+rsa), account key (acme_account+key), challenge token\n"+
			"(…+token, …+http-01) or other. For a certificate it shows the DNS names, the\n"+
			"expiry, the issuer and the key type, and in NOTES what autocert would refuse\n"+
			"(expired, a key that does not match, a value that is not a certificate).\n"+
			"Exit status 1 if the listing failed or a value could not be read.", stdout, stderr)
	filter := fs.String("filter", "", "list only keys matching this shell `pattern` (* matches any run of characters)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	c, closer, g, code, ok := openListing(ctx, "ls", fs, args, filter, stderr)
	if !ok {
		return code
	}
	defer closer.Close()

	now := time.Now()
	infos, err := describe(ctx, c, g, now, func(k kind) bool { return k.isCert() || k == kindAccountKey })
	if err != nil {
		fmt.Fprintf(stderr, "certcache ls: %v\n", err)
		return exitFail
	}
	code = exitOK
	for _, info := range infos {
		if info.Error != "" {
			fmt.Fprintf(stderr, "certcache ls: %s\n", info.Error)
			code = exitFail
		}
	}
	if *asJSON {
		if infos == nil {
			infos = []keyInfo{} // [] rather than null
		}
		if err := writeJSON(stdout, infos); err != nil {
			fmt.Fprintf(stderr, "certcache ls: %v\n", err)
			return exitFail
		}
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tKIND\tSIZE\tMODIFIED\tNOT AFTER\tKEY TYPE\tISSUER\tDNS NAMES\tNOTES")
	for _, info := range infos {
		notes := info.Problems
		if info.Error != "" {
			notes = append(notes, "unreadable: "+info.Error)
		}
		notAfter := "-"
		if info.NotAfter != nil {
			notAfter = info.NotAfter.Format(time.RFC3339) + " (" + until(*info.NotAfter, now) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			printable(info.Key), info.Kind, info.Size, timeOrDash(info.Modified), notAfter,
			dash(info.KeyType), dash(info.Issuer), dash(strings.Join(info.DNSNames, ",")), dash(strings.Join(notes, "; ")))
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return code
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// printable quotes a key that a table would show ambiguously (spaces, tabs
// cannot occur: keys have no control characters).
func printable(key string) string {
	if strings.ContainsAny(key, " \"") || key == "-" {
		return fmt.Sprintf("%q", key)
	}
	return key
}
