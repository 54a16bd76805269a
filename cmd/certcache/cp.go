package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/certcache/certcache"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/crypto/acme/autocert"
	"golang.org/x/term"
)

// outcome is what cp did with one key.
type outcome int

const (
	copied      outcome = iota // written where there was nothing
	replaced                   // written over a different value
	identical                  // the destination already held the same value
	kept                       // the destination held a different value, left alone (-skip-existing)
	vanished                   // deleted from the source after it was listed
	failed                     // not copied, or not verified; see the error
	interrupted                // cut short by an interrupt or by -max-failures
)

// cpResult is the outcome for one key.
type cpResult struct {
	key     string
	outcome outcome
	size    int
	err     error
}

// cpSummary is what cp reports at the end; -json prints it.
type cpSummary struct {
	Listed      int  `json:"listed"` // keys listed in the source (and matching -filter)
	Copied      int  `json:"copied"` // with -dry-run: would be copied
	Replaced    int  `json:"replaced"`
	Identical   int  `json:"identical"`
	Kept        int  `json:"kept"`
	Vanished    int  `json:"vanished"`
	Failed      int  `json:"failed"`
	Interrupted int  `json:"interrupted"`
	Bytes       int  `json:"bytes"` // written (with -dry-run: would be)
	DryRun      bool `json:"dry_run"`
	// Complete is true when the whole listing was gone through without a
	// failure: every key is in the destination with the source's value
	// (or was kept, or vanished), or with -dry-run, could be checked.
	Complete bool `json:"complete"`
	// Stopped says why cp stopped before the end of the listing, if it did.
	Stopped  string      `json:"stopped,omitempty"`
	Seconds  float64     `json:"seconds"`
	Failures []cpFailure `json:"failures,omitempty"` // the first maxReportedFailures
}

type cpFailure struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// maxReportedFailures bounds the failures the summary keeps; every one is
// still counted and printed as it happens.
const maxReportedFailures = 100

// cpOptions are cp's flags.
type cpOptions struct {
	filter       *glob
	dryRun       bool
	skipExisting bool
	workers      int
	maxFailures  int
}

// isTerminal reports whether w is a terminal, where cp draws a progress
// bar. Tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runCp is the cp command.
func runCp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cp", "[-filter GLOB] [-dry-run] [-skip-existing] [-json] SRC DST",
		"Copies every key (or those matching -filter) from the cache at URL SRC to the\n"+
			"cache at URL DST, e.g. from an autocert.DirCache directory to a shared store:\n\n"+
			"  certcache cp file:///var/lib/autocert 'redis://cache:6379/0'\n\n"+
			"The source is listed as a stream. A key whose value DST already holds is\n"+
			"skipped; every copy is read back from DST and compared. Nothing is deleted\n"+
			"from either side, so a copy that was interrupted is finished by running the\n"+
			"same command again. Values are copied as the caches present them: each URL\n"+
			"is opened as given, so encryption_key on SRC decrypts and on DST seals (with\n"+
			"the same key on both, DST gets the same plaintext under fresh ciphertext).\n"+
			"A progress bar is drawn on a terminal; otherwise one line per key.\n"+
			"Exit status 1 if any key failed or the copy did not finish.", stdout, stderr)
	filter := fs.String("filter", "", "copy only keys matching this shell `pattern` (* matches any run of characters)")
	dryRun := fs.Bool("dry-run", false, "report what would be copied without writing anything")
	skipExisting := fs.Bool("skip-existing", false, "leave a key that DST holds with a different value as it is (default: replace it)")
	workers := fs.Int("workers", 4, "keys copied at once")
	maxFailures := fs.Int("max-failures", 10, "stop after this many keys failed (0: never stop), so that a store that is down fails fast")
	asJSON := fs.Bool("json", false, "print a JSON summary instead of one line per key")
	pos, code, ok := parseArgs(fs, args, 2, 2)
	if !ok {
		return code
	}
	if *workers < 1 || *maxFailures < 0 {
		fmt.Fprintf(stderr, "certcache cp: -workers must be at least 1 and -max-failures at least 0\n")
		return exitUsage
	}
	if pos[0] == pos[1] {
		fmt.Fprintf(stderr, "certcache cp: SRC and DST are the same URL\n")
		return exitUsage
	}
	g, err := newGlob(*filter)
	if err != nil {
		fmt.Fprintf(stderr, "certcache cp: -filter: %v\n", err)
		return exitUsage
	}
	src, srcCloser, err := openCache(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "certcache cp: source: %v\n", err)
		return exitFail
	}
	defer srcCloser.Close()
	dst, dstCloser, err := openCache(ctx, pos[1])
	if err != nil {
		fmt.Fprintf(stderr, "certcache cp: destination: %v\n", err)
		return exitFail
	}
	defer dstCloser.Close()

	opts := cpOptions{filter: g, dryRun: *dryRun, skipExisting: *skipExisting, workers: *workers, maxFailures: *maxFailures}
	var p progress = &lines{stdout: stdout, stderr: stderr, quiet: *asJSON, dryRun: *dryRun}
	if isTerminal(stderr) {
		// A bar needs the total: count first. Listing is cheap next to
		// copying (no values), and a source that cannot be listed fails
		// here, before anything is written.
		n, err := count(ctx, src, g)
		if err != nil {
			fmt.Fprintf(stderr, "certcache cp: %v\n", err)
			return exitFail
		}
		if n > 0 {
			p = newBar(stderr, n, *dryRun)
		}
	}
	sum, listErr := copyAll(ctx, src, dst, opts, p)
	p.done()

	if *asJSON {
		if err := writeJSON(stdout, sum); err != nil {
			return exitFail
		}
	} else {
		printSummary(stdout, sum)
	}
	if listErr != nil {
		fmt.Fprintf(stderr, "certcache cp: %v\n", listErr)
	}
	if !sum.Complete {
		if sum.Stopped != "" {
			fmt.Fprintf(stderr, "certcache cp: %s; run the same command again to finish the copy\n", sum.Stopped)
		}
		return exitFail
	}
	return exitOK
}

// count counts the keys of c that g matches.
func count(ctx context.Context, c certcache.Cache, g *glob) (int64, error) {
	var n int64
	for e, err := range certcache.List(ctx, c, g.prefix) {
		if err != nil {
			return 0, err
		}
		if g.match(e.Key) {
			n++
		}
	}
	return n, nil
}

// copyAll copies what opts selects from src to dst, opts.workers keys at
// once, reporting each key to p. It returns the summary and the listing's
// error, if the listing failed.
func copyAll(ctx context.Context, src, dst certcache.Cache, opts cpOptions, p progress) (cpSummary, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The listing streams into jobs of cpBatch keys; at most workers jobs
	// (and their values) are in flight at a time, whatever the size of the
	// source.
	jobs := make(chan []string)
	var listErr error
	listed := 0
	go func() {
		defer close(jobs)
		batch := make([]string, 0, cpBatch)
		send := func() bool {
			select {
			case jobs <- batch:
				listed += len(batch)
				batch = make([]string, 0, cpBatch)
				return true
			case <-ctx.Done():
				return false
			}
		}
		for e, err := range certcache.List(ctx, src, opts.filter.prefix) {
			if err != nil {
				listErr = err
				break
			}
			if !opts.filter.match(e.Key) {
				continue
			}
			if batch = append(batch, e.Key); len(batch) == cpBatch && !send() {
				return
			}
		}
		if len(batch) > 0 {
			send()
		}
	}()
	// Each result is counted and reported by the worker that has it, one
	// at a time, before that worker goes on: an interruption or the
	// -max-failures stop seen here is seen by its next key.
	sum := cpSummary{DryRun: opts.dryRun}
	var mu sync.Mutex
	handle := func(r cpResult) {
		mu.Lock()
		defer mu.Unlock()
		if r.err != nil && ctx.Err() != nil {
			r.outcome = interrupted
		}
		switch r.outcome {
		case copied:
			sum.Copied++
			sum.Bytes += r.size
		case replaced:
			sum.Replaced++
			sum.Bytes += r.size
		case identical:
			sum.Identical++
		case kept:
			sum.Kept++
		case vanished:
			sum.Vanished++
		case failed:
			sum.Failed++
			if len(sum.Failures) < maxReportedFailures {
				sum.Failures = append(sum.Failures, cpFailure{r.key, r.err.Error()})
			}
			if opts.maxFailures > 0 && sum.Failed >= opts.maxFailures && sum.Stopped == "" {
				sum.Stopped = fmt.Sprintf("stopped after %d failed keys", sum.Failed)
				cancel()
			}
		case interrupted:
			sum.Interrupted++
		}
		p.key(r)
	}
	var wg sync.WaitGroup
	for range opts.workers {
		wg.Go(func() {
			for batch := range jobs {
				copyBatch(ctx, src, dst, batch, opts, handle)
			}
		})
	}
	wg.Wait()
	// The lister has returned: jobs is closed, and every worker after it.
	sum.Listed = listed
	if sum.Stopped == "" && ctx.Err() != nil {
		sum.Stopped = "interrupted"
	}
	if listErr != nil && ctx.Err() != nil {
		listErr = nil // the listing stopped because we did
	}
	sum.Complete = sum.Failed == 0 && sum.Interrupted == 0 && sum.Stopped == "" && listErr == nil
	sum.Seconds = time.Since(start).Seconds()
	return sum, listErr
}

// cpBatch is how many keys cp reads at once from each side, with
// certcache.GetMany: one round trip on Redis and SQL instead of sixteen.
// Writes and their verification stay one key at a time, so larger batches
// would save little.
const cpBatch = 16

// copyBatch copies keys and reports each to emit as soon as it is done. It
// reads their values from src and from dst with one GetMany each, then
// writes and verifies key by key as copyKey does, so that an interrupted
// copy stops at the key it was on. A batch read that fails is done again
// key by key (copyKey), so that each key gets its own outcome and error.
func copyBatch(ctx context.Context, src, dst certcache.Cache, keys []string, opts cpOptions, emit func(cpResult)) {
	vs, err := certcache.GetMany(ctx, src, keys)
	var curs [][]byte
	if err == nil {
		curs, err = certcache.GetMany(ctx, dst, keys)
	}
	for i, k := range keys {
		switch {
		case ctx.Err() != nil:
			emit(cpResult{key: k, outcome: failed, err: ctx.Err()}) // interrupted
			continue
		case err != nil:
			emit(copyKey(ctx, src, dst, k, opts))
			continue
		}
		emit(copyValue(ctx, dst, k, vs[i], curs[i], opts))
	}
}

// copyKey copies one key, read from src and dst with a Get each.
func copyKey(ctx context.Context, src, dst certcache.Cache, key string, opts cpOptions) cpResult {
	v, err := src.Get(ctx, key)
	if err == autocert.ErrCacheMiss {
		return cpResult{key: key, outcome: vanished}
	}
	if err != nil {
		return cpResult{key: key, outcome: failed, err: fmt.Errorf("read source: %w", err)}
	}
	cur, err := dst.Get(ctx, key)
	switch {
	case err == autocert.ErrCacheMiss:
		cur = nil
	case err != nil:
		// Could be down, or hold something that does not open (another
		// encryption key): either way, not ours to overwrite blind.
		return cpResult{key: key, outcome: failed, size: len(v), err: fmt.Errorf("read destination (not overwritten): %w", err)}
	case cur == nil:
		cur = []byte{}
	}
	return copyValue(ctx, dst, key, v, cur, opts)
}

// copyValue copies v, the source's value of key (nil: it vanished), over
// cur, the destination's (nil: none). It never deletes and never writes
// over a value it could not read.
func copyValue(ctx context.Context, dst certcache.Cache, key string, v, cur []byte, opts cpOptions) cpResult {
	r := cpResult{key: key}
	fail := func(err error) cpResult {
		r.outcome, r.err = failed, err
		return r
	}
	if v == nil {
		r.outcome = vanished
		return r
	}
	r.size = len(v)
	switch {
	case cur == nil:
		r.outcome = copied
	case bytes.Equal(cur, v):
		r.outcome = identical
		return r
	case opts.skipExisting:
		r.outcome = kept
		return r
	default:
		r.outcome = replaced
	}
	if opts.dryRun {
		return r
	}
	if err := dst.Put(ctx, key, v); err != nil {
		return fail(fmt.Errorf("write destination: %w", err))
	}
	back, err := dst.Get(ctx, key)
	switch {
	case err == autocert.ErrCacheMiss:
		return fail(fmt.Errorf("verify %q: the destination does not have it after writing it", key))
	case err != nil:
		return fail(fmt.Errorf("verify: %w", err))
	case !bytes.Equal(back, v):
		return fail(fmt.Errorf("verify %q: read back %d bytes that differ from the %d written", key, len(back), len(v)))
	}
	return r
}

// progress reports cp's progress, one call at a time.
type progress interface {
	key(r cpResult)
	done()
}

// lines reports each key on its own line: for logs and pipes.
type lines struct {
	stdout, stderr io.Writer
	quiet          bool // -json: only failures, on stderr
	dryRun         bool
}

func (l *lines) key(r cpResult) {
	if r.outcome == failed {
		fmt.Fprintf(l.stderr, "certcache cp: %v\n", r.err)
		return
	}
	if l.quiet {
		return
	}
	var what string
	switch r.outcome {
	case copied:
		what = "copied"
		if l.dryRun {
			what = "would copy"
		}
	case replaced:
		what = "replaced"
		if l.dryRun {
			what = "would replace"
		}
	case identical:
		what = "identical"
	case kept:
		what = "kept (differs; -skip-existing)"
	case vanished:
		what = "vanished from the source"
	case interrupted:
		what = "interrupted"
	}
	fmt.Fprintf(l.stdout, "%s %s\n", what, r.key)
}

func (l *lines) done() {}

// bar draws a progress bar on a terminal, with failures printed above it.
type bar struct {
	b      *progressbar.ProgressBar
	stderr io.Writer
	n      int64
}

func newBar(w io.Writer, total int64, dryRun bool) *bar {
	desc := "copying"
	if dryRun {
		desc = "checking"
	}
	return &bar{stderr: w, b: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

func (b *bar) key(r cpResult) {
	if r.outcome == failed {
		b.b.Clear()
		fmt.Fprintf(b.stderr, "certcache cp: %v\n", r.err)
	}
	b.n++
	if b.n > b.b.GetMax64() {
		b.b.ChangeMax64(b.n) // keys added to the source since it was counted
	}
	b.b.Add64(1)
}

func (b *bar) done() {
	if !b.b.IsFinished() {
		// Stopped early: leave the bar where it got to, on its own line.
		b.b.Exit()
		fmt.Fprintln(b.stderr)
	}
}

func printSummary(w io.Writer, s cpSummary) {
	verb := "copied"
	if s.DryRun {
		verb = "would copy"
	}
	fmt.Fprintf(w, "%d keys listed: %s %d new and %d replaced (%d bytes), %d identical",
		s.Listed, verb, s.Copied, s.Replaced, s.Bytes, s.Identical)
	if s.Kept > 0 {
		fmt.Fprintf(w, ", %d kept (-skip-existing)", s.Kept)
	}
	if s.Vanished > 0 {
		fmt.Fprintf(w, ", %d vanished", s.Vanished)
	}
	fmt.Fprintf(w, ", %d failed", s.Failed)
	if s.Interrupted > 0 {
		fmt.Fprintf(w, ", %d interrupted", s.Interrupted)
	}
	fmt.Fprintf(w, " in %.1fs", s.Seconds)
	switch {
	case s.Complete && s.DryRun:
		fmt.Fprintf(w, "; nothing was written\n")
	case s.Complete:
		fmt.Fprintf(w, "; the copy is complete\n")
	default:
		fmt.Fprintf(w, "; the copy is NOT complete\n")
	}
}
