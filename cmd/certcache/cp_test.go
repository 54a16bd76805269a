package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// dirValues reads every file of an autocert.DirCache directory.
func dirValues(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return got
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = b
	}
	return got
}

// sameValues reports the differences between two key → value maps.
func sameValues(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %q missing", what, k)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: %q holds %d bytes that differ from the %d expected", what, k, len(g), len(w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected key %q", what, k)
		}
	}
}

// cpSummaryOf parses cp -json's output.
func cpSummaryOf(t *testing.T, stdout string) cpSummary {
	t.Helper()
	var s cpSummary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("cp -json: %v", err)
	}
	return s
}

// TestCpDirCache copies a directory written by autocert.DirCache to
// another directory, then runs the same copy again, which finds nothing to
// do.
func TestCpDirCache(t *testing.T) {
	fx := newFixture(t)
	dst := filepath.Join(t.TempDir(), "dst")
	stdout, stderr, code := runCmd(t, "cp", fx.url(), "file://"+dst)
	if code != 0 || stderr != "" {
		t.Fatalf("cp: status %d, stderr %q", code, stderr)
	}
	sameValues(t, "destination", dirValues(t, dst), fx.values)
	for k := range fx.values {
		if !strings.Contains(stdout, "copied "+k+"\n") {
			t.Errorf("no line says %q was copied", k)
		}
	}
	if !regexp.MustCompile(`(?m)^10 keys listed: copied 10 new and 0 replaced \(\d+ bytes\), 0 identical, 0 failed in \S+; the copy is complete$`).MatchString(stdout) {
		t.Errorf("summary not as expected")
	}
	// Nothing changed at the source.
	sameValues(t, "source", dirValues(t, fx.dir), fx.values)

	stdout, _, code = runCmd(t, "cp", "-json", fx.url(), "file://"+dst)
	s := cpSummaryOf(t, stdout)
	if code != 0 || s.Listed != 10 || s.Identical != 10 || s.Copied+s.Replaced+s.Failed != 0 || !s.Complete {
		t.Errorf("second cp: status %d, %+v; want 10 identical", code, s)
	}
}

func TestCpDryRun(t *testing.T) {
	fx := newFixture(t)
	dst := filepath.Join(t.TempDir(), "dst")
	os.MkdirAll(dst, 0o700)
	os.WriteFile(filepath.Join(dst, fxGood), []byte("older"), 0o600)
	stdout, _, code := runCmd(t, "cp", fx.url(), "file://"+dst, "-dry-run")
	if code != 0 {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(stdout, "would replace "+fxGood+"\n") || !strings.Contains(stdout, "would copy "+fxRSA+"\n") ||
		!strings.Contains(stdout, "would copy 9 new and 1 replaced") || !strings.Contains(stdout, "nothing was written") {
		t.Errorf("dry run output not as expected")
	}
	sameValues(t, "destination after a dry run", dirValues(t, dst), map[string][]byte{fxGood: []byte("older")})
}

func TestCpReplaceAndSkipExisting(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		name  string
		flags []string
		want  []byte
		sum   cpSummary
	}{
		{"replace", nil, fx.values[fxGood], cpSummary{Listed: 10, Copied: 9, Replaced: 1}},
		{"skip-existing", []string{"-skip-existing"}, []byte("newer"), cpSummary{Listed: 10, Copied: 9, Kept: 1}},
	} {
		// The name goes into the temporary directory's path, and so into
		// a file:// URL: nothing there that a URL would take apart.
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			os.MkdirAll(dst, 0o700)
			os.WriteFile(filepath.Join(dst, fxGood), []byte("newer"), 0o600)
			stdout, _, code := runCmd(t, append([]string{"cp", "-json", fx.url(), "file://" + dst}, tc.flags...)...)
			s := cpSummaryOf(t, stdout)
			if code != 0 || s.Listed != tc.sum.Listed || s.Copied != tc.sum.Copied || s.Replaced != tc.sum.Replaced || s.Kept != tc.sum.Kept {
				t.Errorf("status %d, %+v; want %+v", code, s, tc.sum)
			}
			if got := dirValues(t, dst)[fxGood]; !bytes.Equal(got, tc.want) {
				t.Errorf("%s holds %q…, want %q…", fxGood, got[:5], tc.want[:5])
			}
		})
	}
}

func TestCpFilter(t *testing.T) {
	fx := newFixture(t)
	dst := filepath.Join(t.TempDir(), "dst")
	_, _, code := runCmd(t, "cp", "-filter", "a.example.com*", fx.url(), "file://"+dst)
	if code != 0 {
		t.Fatalf("status %d", code)
	}
	sameValues(t, "destination", dirValues(t, dst), map[string][]byte{fxGood: fx.values[fxGood], fxRSA: fx.values[fxRSA]})
}

// TestCpInterrupted interrupts a copy after three keys, then runs it again:
// the second run copies what the first did not, and verifies the rest.
func TestCpInterrupted(t *testing.T) {
	fx := newFixture(t)
	dstURL := "file://" + filepath.Join(t.TempDir(), "dst")
	src, srcCloser, err := openCache(context.Background(), fx.url())
	if err != nil {
		t.Fatal(err)
	}
	defer srcCloser.Close()
	dst, dstCloser, err := openCache(context.Background(), dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dstCloser.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, _ := newGlob("")
	p := &interrupter{after: 3, cancel: cancel}
	sum, listErr := copyAll(ctx, src, dst, cpOptions{filter: g, workers: 1}, p)
	t.Logf("interrupted run: %+v, listing: %v", sum, listErr)
	if sum.Complete || sum.Stopped != "interrupted" || listErr != nil {
		t.Errorf("interrupted run: complete %v, stopped %q, listing error %v; want incomplete, interrupted, none", sum.Complete, sum.Stopped, listErr)
	}
	if sum.Copied < 3 || sum.Copied >= 10 {
		t.Errorf("interrupted run copied %d keys, want 3 and fewer than 10", sum.Copied)
	}

	stdout, _, code := runCmd(t, "cp", "-json", fx.url(), dstURL)
	s := cpSummaryOf(t, stdout)
	if code != 0 || !s.Complete || s.Copied != 10-sum.Copied || s.Identical != sum.Copied {
		t.Errorf("second run: status %d, %+v; want %d copied and %d identical", code, s, 10-sum.Copied, sum.Copied)
	}
	sameValues(t, "destination", dirValues(t, strings.TrimPrefix(dstURL, "file://")), fx.values)
}

// interrupter cancels the copy once it has seen after keys.
type interrupter struct {
	after, n int
	cancel   func()
}

func (p *interrupter) key(cpResult) {
	if p.n++; p.n == p.after {
		p.cancel()
	}
}
func (p *interrupter) done() {}

// TestCpOntoDownStore copies onto stores that fail: a Redis that is not
// there, and a directory that cannot be written. cp exits 1, stops after
// -max-failures, and the source is untouched.
func TestCpOntoDownStore(t *testing.T) {
	fx := newFixture(t)
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("a file where the directory should be"), 0o600)
	for _, tc := range []struct {
		name, dst string
		stderr    string
	}{
		{"redis-refused", "redis://" + testenv.ClosedAddr(t) + "/0?timeout=2s", "connection refused"},
		{"file-not-a-directory", "file://" + notDir, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "cp", "-json", "-max-failures", "3", "-workers", "1", fx.url(), tc.dst)
			s := cpSummaryOf(t, stdout)
			// The one worker may have failed one more key while the
			// third failure was being counted.
			if code != 1 || s.Complete || s.Failed < 3 || s.Failed > 4 || s.Copied != 0 || s.Stopped != "stopped after 3 failed keys" {
				t.Errorf("status %d, %+v; want 1, 3 or 4 failed, stopped", code, s)
			}
			if !strings.Contains(stderr, tc.stderr) || !strings.Contains(stderr, "run the same command again") {
				t.Errorf("stderr lacks %q and the advice to run again", tc.stderr)
			}
			sameValues(t, "source", dirValues(t, fx.dir), fx.values)
		})
	}
	// A source that is down fails the listing.
	stdout, stderr, code := runCmd(t, "cp", "redis://"+testenv.ClosedAddr(t)+"/0?timeout=2s", "file://"+t.TempDir())
	if code != 1 || !strings.Contains(stderr, "list") || !strings.Contains(stdout, "NOT complete") {
		t.Errorf("source down: status %d; want 1, a listing error and an incomplete summary", code)
	}
}

// TestCpEncryption copies plaintext into an encrypted cache, between two
// caches under the same key, and back out.
func TestCpEncryption(t *testing.T) {
	fx := newFixture(t)
	keyFile := filepath.Join(t.TempDir(), "key")
	var key [32]byte
	rand.Read(key[:])
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key[:])), 0o600)
	enc := "?encryption_key=file:" + keyFile
	tmp := t.TempDir()
	sealed, sealed2, plain := filepath.Join(tmp, "sealed"), filepath.Join(tmp, "sealed2"), filepath.Join(tmp, "plain")

	// Plaintext into an encrypted cache: sealed at rest.
	if _, _, code := runCmd(t, "cp", fx.url(), "file://"+sealed+enc); code != 0 {
		t.Fatalf("cp into the encrypted cache: status %d", code)
	}
	for k, v := range dirValues(t, sealed) {
		if bytes.Contains(v, []byte("-----BEGIN")) || bytes.Equal(v, fx.values[k]) {
			t.Errorf("%s is stored in plaintext", k)
		}
	}
	// ls through the key sees the certificates.
	stdout, _, _ := runCmd(t, "ls", "-json", "-filter", fxGood, "file://"+sealed+enc)
	if !strings.Contains(stdout, `"key_type": "ECDSA P-256"`) {
		t.Errorf("ls of the encrypted cache does not read the certificate")
	}
	// Same key on both sides: the same plaintext under new ciphertext, and
	// a second run finds every value identical.
	if _, _, code := runCmd(t, "cp", "file://"+sealed+enc, "file://"+sealed2+enc); code != 0 {
		t.Fatalf("cp between encrypted caches: status %d", code)
	}
	stdout, _, code := runCmd(t, "cp", "-json", "file://"+sealed+enc, "file://"+sealed2+enc)
	if s := cpSummaryOf(t, stdout); code != 0 || s.Identical != 10 {
		t.Errorf("second cp between encrypted caches: status %d, %+v; want 10 identical", code, s)
	}
	// And back out: the original bytes.
	if _, _, code := runCmd(t, "cp", "file://"+sealed2+enc, "file://"+plain); code != 0 {
		t.Fatalf("cp out of the encrypted cache: status %d", code)
	}
	sameValues(t, "decrypted copy", dirValues(t, plain), fx.values)

	// Without the key, the sealed values do not open: cp copies nothing
	// over a value it cannot read.
	stdout, stderr, code := runCmd(t, "cp", "-json", "-filter", fxGood, fx.url(), "file://"+sealed+"?encryption_key=file:"+writeOtherKey(t))
	if s := cpSummaryOf(t, stdout); code != 1 || s.Failed != 1 || !strings.Contains(stderr, "not overwritten") {
		t.Errorf("cp onto values sealed under another key: status %d, %+v", code, s)
	}
	if got := dirValues(t, sealed)[fxGood]; bytes.Contains(got, []byte("-----BEGIN")) {
		t.Errorf("a value sealed under another key was overwritten")
	}
}

func writeOtherKey(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "other")
	var key [32]byte
	rand.Read(key[:])
	os.WriteFile(f, []byte(base64.StdEncoding.EncodeToString(key[:])), 0o600)
	return f
}

// TestCpMemoryFront copies into a URL with a memory front, which cp looks
// through: a fresh cache on the plain URL sees every value.
func TestCpMemoryFront(t *testing.T) {
	fx := newFixture(t)
	dst := filepath.Join(t.TempDir(), "dst")
	if _, _, code := runCmd(t, "cp", fx.url(), "file://"+dst+"?memory=true&memory_ttl=1h"); code != 0 {
		t.Fatalf("status %d", code)
	}
	sameValues(t, "destination", dirValues(t, dst), fx.values)
}

// TestCpProgressBar draws the bar, as on a terminal.
func TestCpProgressBar(t *testing.T) {
	fx := newFixture(t)
	old := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	defer func() { isTerminal = old }()
	stdout, stderr, code := runCmd(t, "cp", fx.url(), "file://"+filepath.Join(t.TempDir(), "dst"))
	if code != 0 {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(stderr, "copying") || !strings.Contains(stderr, "100%") || !strings.Contains(stderr, "(10/10,") {
		t.Errorf("stderr has no finished progress bar")
	}
	if strings.Contains(stdout, "copied "+fxGood) || !strings.Contains(stdout, "the copy is complete") {
		t.Errorf("with a bar, stdout should hold the summary only")
	}
}

// TestCpVerifies copies onto a store that loses or changes what it is
// given: the read-back catches it.
func TestCpVerifies(t *testing.T) {
	fx := newFixture(t)
	src, closer, err := openCache(context.Background(), fx.url())
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	g, _ := newGlob("a.example.com")
	for _, tc := range []struct {
		name   string
		mangle func([]byte) []byte
		want   string
	}{
		{"drops", func([]byte) []byte { return nil }, "does not have it after writing it"},
		{"truncates", func(b []byte) []byte { return b[:len(b)/2] }, "that differ from the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, closer, err := openCache(context.Background(), "mem://")
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			dst := &lossy{Cache: mem, mangle: tc.mangle}
			var p collect
			sum, _ := copyAll(context.Background(), src, dst, cpOptions{filter: g, workers: 1}, &p)
			if sum.Complete || sum.Failed != 1 || len(p.results) != 1 || !strings.Contains(p.results[0].err.Error(), tc.want) {
				t.Errorf("%+v, results %+v; want one failure saying %q", sum, p.results, tc.want)
			}
		})
	}
}

// lossy is a cache whose Put stores mangle(data), or nothing if nil.
type lossy struct {
	certcache.Cache
	mangle func([]byte) []byte
}

func (l *lossy) Put(ctx context.Context, key string, data []byte) error {
	if v := l.mangle(data); v != nil {
		return l.Cache.Put(ctx, key, v)
	}
	return nil
}

type collect struct {
	mu      sync.Mutex
	results []cpResult
}

func (c *collect) key(r cpResult) { c.mu.Lock(); c.results = append(c.results, r); c.mu.Unlock() }
func (c *collect) done()          {}

// TestCpManyKeys copies 10,000 keys of 4 KiB (40 MiB) and lists them,
// sampling the heap: the copy streams, so the heap grows by far less than
// the values.
func TestCpManyKeys(t *testing.T) {
	const n, size = 10000, 4 << 10
	src := filepath.Join(t.TempDir(), "src")
	dc := autocert.DirCache(src)
	value := bytes.Repeat([]byte("v"), size)
	for i := range n {
		if err := dc.Put(context.Background(), fmt.Sprintf("k%05d+http-01", i), value); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "dst")
	srcC, c1, err := openCache(context.Background(), "file://"+src)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	dstC, c2, err := openCache(context.Background(), "file://"+dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	g, _ := newGlob("")

	var sum cpSummary
	took, peak := measureHeap(func() {
		sum, err = copyAll(context.Background(), srcC, dstC, cpOptions{filter: g, workers: 8}, &lines{stdout: io.Discard, stderr: io.Discard})
	})
	t.Logf("cp of %d keys of %d bytes, file:// → file://, 8 workers: %v, heap peak +%.1f MiB", n, size, took, float64(peak)/(1<<20))
	if err != nil || !sum.Complete || sum.Copied != n {
		t.Fatalf("%+v, %v", sum, err)
	}
	if peak > 16<<20 {
		t.Errorf("the heap grew by %d MiB while copying %d MiB: values are held, not streamed", peak>>20, n*size>>20)
	}
	if got := len(dirValues(t, dst)); got != n {
		t.Errorf("destination has %d keys, want %d", got, n)
	}

	var infos []keyInfo
	took, peak = measureHeap(func() {
		infos, err = describe(context.Background(), dstC, g, time.Now(), func(k kind) bool { return k.isCert() || k == kindAccountKey })
	})
	t.Logf("ls of %d keys, file://: %v, heap peak +%.1f MiB", n, took, float64(peak)/(1<<20))
	if err != nil || len(infos) != n {
		t.Fatalf("ls: %d keys, %v", len(infos), err)
	}
}

// measureHeap runs f and returns how long it took and how far the heap in
// use rose above where it was, sampled every 5 ms.
func measureHeap(f func()) (time.Duration, uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	f()
	took := time.Since(start)
	close(stop)
	<-done
	return took, peak.Load()
}
