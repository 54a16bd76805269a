package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// The built command, as go install makes it: tests here run the binary,
// not run().

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds the command once per test process.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "certcache-bin")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "certcache")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// runBinary runs the built command and returns its output and exit status.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("$ certcache %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// TestBinary runs the built command on a DirCache directory.
func TestBinary(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "usage: certcache <command>"},
		{[]string{"ls", fx.url()}, 0, "a.example.com+rsa      RSA certificate"},
		{[]string{"inspect", fx.url(), fxGood}, 0, "matches the leaf"},
		{[]string{"expiring", fx.url()}, 1, fxSoon},
		{[]string{"expiring", fx.url(), "-within", "nope"}, 2, ""},
		{[]string{"cp", fx.url(), "file://" + filepath.Join(t.TempDir(), "copy")}, 0, "the copy is complete"},
	} {
		stdout, stderr, code := runBinary(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.want) {
			t.Errorf("certcache %s: status %d, want %d and %q in stdout", strings.Join(tc.args, " "), code, tc.code, tc.want)
		}
		assertNoPrivateKey(t, stdout+stderr, fx.values[fxGood], fx.keys[fxGood])
	}
}

// TestBinaryInterrupted interrupts the built cp with SIGINT, as Ctrl-C
// would, then runs it again: the first run exits 1 and says to run it
// again; the second copies the rest.
func TestBinaryInterrupted(t *testing.T) {
	const n = 1000
	src := filepath.Join(t.TempDir(), "src")
	want := map[string][]byte{}
	for i := range n {
		k := fmt.Sprintf("token-%04d+http-01", i)
		want[k] = []byte(k + ".thumbprint")
		if err := autocert.DirCache(src).Put(context.Background(), k, want[k]); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "dst")

	cmd := exec.Command(binary(t), "cp", "-workers", "1", "file://"+src, "file://"+dst)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
		if len(out) == 1 {
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	err = cmd.Wait()
	t.Logf("interrupted run: %d lines, last %q; stderr %q; %v", len(out), out[len(out)-1], stderr.String(), err)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("interrupted cp: %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "interrupted; run the same command again") {
		t.Errorf("stderr does not say to run the copy again")
	}
	done := len(dirValues(t, dst))
	if done == 0 || done >= n {
		t.Fatalf("the interrupted run left %d of %d keys; want some, not all", done, n)
	}

	stdoutJSON, _, code := runBinary(t, "cp", "-json", "file://"+src, "file://"+dst)
	var s cpSummary
	if err := json.Unmarshal([]byte(stdoutJSON), &s); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !s.Complete || s.Identical != done || s.Copied != n-done {
		t.Errorf("second run: status %d, %+v; want %d identical and %d copied", code, s, done, n-done)
	}
	sameValues(t, "destination", dirValues(t, dst), want)
}

// TestBinaryProgressBar runs cp on a terminal (a pseudo-terminal made by
// script(1)): a progress bar instead of one line per key.
func TestBinaryProgressBar(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) from util-linux is needed to run the command on a terminal: %v", err)
	}
	fx := newFixture(t)
	dst := filepath.Join(t.TempDir(), "dst")
	line := fmt.Sprintf("%s cp %s file://%s", binary(t), fx.url(), dst)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, "-q", "-e", "-c", line, "/dev/null").CombinedOutput()
	t.Logf("on a terminal:\n%s", out)
	if err != nil {
		t.Fatalf("cp on a terminal: %v", err)
	}
	s := string(out)
	if !strings.Contains(s, "copying") || !strings.Contains(s, "100%") || !strings.Contains(s, "(10/10,") {
		t.Errorf("no finished progress bar")
	}
	if strings.Contains(s, "copied "+fxGood) {
		t.Errorf("per-key lines on a terminal")
	}
	if !strings.Contains(s, "the copy is complete") {
		t.Errorf("no summary")
	}
}
