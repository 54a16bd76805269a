package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		key    string
		kind   kind
		domain string
	}{
		{"example.com", kindCert, "example.com"},
		{"www.xn--bcher-kva.example", kindCert, "www.xn--bcher-kva.example"},
		{"example.com+rsa", kindRSACert, "example.com"},
		{"acme_account+key", kindAccountKey, ""},
		{"acme_account.key", kindAccountKey, ""},
		{"example.com+token", kindToken, ""},
		{"Zt0ken-abc_DEF+http-01", kindToken, ""},
		{"localhost", kindOther, ""}, // autocert refuses names without a dot
		{"Example.com", kindOther, ""},
		{"certcache-demo+pebble-root.pem", kindOther, ""},
		{"a/b.example.com", kindOther, ""},
		{".example.com", kindOther, ""},
		{"+rsa", kindOther, ""},
	} {
		k, d := classify(tc.key)
		if k != tc.kind || d != tc.domain {
			t.Errorf("classify(%q) = %v, %q; want %v, %q", tc.key, k, d, tc.kind, tc.domain)
		}
	}
}

func TestParseWindow(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "21d", want: 21 * day},
		{in: "0d", want: 0},
		{in: "0", want: 0},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "-1d", bad: true},
		{in: "-5h", bad: true},
		{in: "1d-5h", bad: true},
		{in: "1e3d", bad: true},
		{in: "3x", bad: true},
		{in: "21days", bad: true},
		{in: "99999d", bad: true},
	} {
		got, err := parseWindow(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseWindow(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, prefix string
		match, nomatch  []string
	}{
		{"", "", []string{"a", "a/b", "acme_account+key"}, nil},
		{"*", "", []string{"a", "a/b/c", "../x"}, nil},
		{"*.example.com", "", []string{"a.example.com", "a/b.example.com"}, []string{"a.example.com+rsa", "example.com"}},
		{"example.com*", "example.com", []string{"example.com", "example.com+rsa"}, []string{"www.example.com"}},
		{"*+http-01", "", []string{"tok+http-01"}, []string{"tok+token"}},
		{"a?c", "a", []string{"abc", "a/c"}, []string{"ac", "abbc"}},
		{"[ab].com", "", []string{"a.com", "b.com"}, []string{"c.com"}},
		{`a\*b`, "a", []string{"a*b"}, []string{"axb"}},
	} {
		g, err := newGlob(tc.pattern)
		if err != nil {
			t.Fatalf("newGlob(%q): %v", tc.pattern, err)
		}
		if g.prefix != tc.prefix {
			t.Errorf("newGlob(%q).prefix = %q, want %q", tc.pattern, g.prefix, tc.prefix)
		}
		for _, k := range tc.match {
			if !g.match(k) {
				t.Errorf("%q does not match %q", tc.pattern, k)
			}
		}
		for _, k := range tc.nomatch {
			if g.match(k) {
				t.Errorf("%q matches %q", tc.pattern, k)
			}
		}
	}
	if _, err := newGlob("[a"); err == nil {
		t.Error(`newGlob("[a") succeeded`)
	}
}

// TestUsage checks exit statuses and where usage goes: -h to stdout with
// status 0, a usage error to stderr with status 2.
func TestUsage(t *testing.T) {
	dir := "file://" + t.TempDir()
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // a substring; "" means stdout must be empty
		stderr     string
		stderrNone bool
	}{
		{args: nil, code: 2, stderr: "usage: certcache <command>"},
		{args: []string{"-h"}, code: 0, stdout: "usage: certcache <command>", stderrNone: true},
		{args: []string{"help"}, code: 0, stdout: "Commands:", stderrNone: true},
		{args: []string{"help", "cp"}, code: 0, stdout: "usage: certcache cp", stderrNone: true},
		{args: []string{"help", "nope"}, code: 2, stderr: `unknown command "nope"`},
		{args: []string{"nope"}, code: 2, stderr: `unknown command "nope"`},
		{args: []string{"ls", "-h"}, code: 0, stdout: "usage: certcache ls", stderrNone: true},
		{args: []string{"inspect", "-help"}, code: 0, stdout: "usage: certcache inspect", stderrNone: true},
		{args: []string{"cp", "-h"}, code: 0, stdout: "-dry-run", stderrNone: true},
		{args: []string{"rm", "-h"}, code: 0, stdout: "usage: certcache rm", stderrNone: true},
		{args: []string{"expiring", "-h"}, code: 0, stdout: "-within", stderrNone: true},
		{args: []string{"demo", "-h"}, code: 0, stdout: "usage: certcache demo", stderrNone: true},
		{args: []string{"ls"}, code: 2, stderr: "missing arguments"},
		{args: []string{"ls", dir, "extra"}, code: 2, stderr: "too many arguments: extra"},
		{args: []string{"ls", "-bogus", dir}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"ls", "-filter", "[", dir}, code: 2, stderr: "bad pattern"},
		{args: []string{"inspect", dir}, code: 2, stderr: "missing arguments"},
		{args: []string{"cp", dir}, code: 2, stderr: "missing arguments"},
		{args: []string{"cp", dir, dir}, code: 2, stderr: "same URL"},
		{args: []string{"cp", "-workers", "0", dir, dir + "/x"}, code: 2, stderr: "-workers"},
		{args: []string{"rm", dir}, code: 2, stderr: "missing arguments"},
		{args: []string{"leases", "-h"}, code: 0, stdout: "-prefix", stderrNone: true},
		{args: []string{"unlock", "-h"}, code: 0, stdout: "-force", stderrNone: true},
		{args: []string{"leases"}, code: 2, stderr: "missing arguments"},
		{args: []string{"unlock", dir}, code: 2, stderr: "missing arguments"},
		{args: []string{"unlock", dir, "a", "b"}, code: 2, stderr: "too many arguments: b"},
		{args: []string{"unlock", dir, ""}, code: 1, stderr: "invalid key"},
		{args: []string{"expiring", "-within", "3x", dir}, code: 2, stderr: `invalid window "3x"`},
		{args: []string{"expiring", dir, "-within"}, code: 2, stderr: "flag needs an argument"},
		// Not usage errors: the URL is checked by Open.
		{args: []string{"ls", "nope://x"}, code: 1, stderr: `unknown scheme "nope"`},
		{args: []string{"ls", "file://" + t.TempDir() + "?bogus=1"}, code: 1, stderr: "takes no parameters"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			if tc.stdout == "" && stdout != "" {
				t.Errorf("stdout not empty")
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout lacks %q", tc.stdout)
			}
			if tc.stderrNone && stderr != "" {
				t.Errorf("stderr not empty")
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q", tc.stderr)
			}
		})
	}
}

// TestFlagsAfterArguments checks that flags may follow the arguments, as
// the usage lines show them, and that "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	fs := newFlagSet("x", "", "", nil, nil)
	b := fs.Bool("b", false, "")
	s := fs.String("s", "", "")
	for _, tc := range []struct {
		args []string
		pos  []string
		b    bool
		s    string
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, false, ""},
		{[]string{"-b", "a", "b"}, []string{"a", "b"}, true, ""},
		{[]string{"a", "-b", "b", "-s", "v"}, []string{"a", "b"}, true, "v"},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, false, ""},
	} {
		*b, *s = false, ""
		pos, _, ok := parseArgs(fs, tc.args, 0, -1)
		if !ok || !slices.Equal(pos, tc.pos) || *b != tc.b || *s != tc.s {
			t.Errorf("parseArgs(%q) = %q, b=%v s=%q, ok=%v; want %q, b=%v s=%q", tc.args, pos, *b, *s, ok, tc.pos, tc.b, tc.s)
		}
	}
}

// TestLs lists a directory written by autocert.DirCache.
func TestLs(t *testing.T) {
	fx := newFixture(t)
	stdout, _, code := runCmd(t, "ls", "-json", fx.url())
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	var infos []keyInfo
	if err := json.Unmarshal([]byte(stdout), &infos); err != nil {
		t.Fatalf("ls -json: %v", err)
	}
	var keys []string
	byKey := map[string]map[string]any{}
	var raw []map[string]any
	json.Unmarshal([]byte(stdout), &raw)
	for _, r := range raw {
		keys = append(keys, r["key"].(string))
		byKey[r["key"].(string)] = r
	}
	want := slices.Sorted(func(yield func(string) bool) {
		for k := range fx.values {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q (sorted)", keys, want)
	}
	for _, tc := range []struct {
		key, kind, keyType, problem string
		names                       []any
		notAfter                    bool
	}{
		{key: fxGood, kind: "certificate", keyType: "ECDSA P-256", names: []any{fxGood, "www." + fxGood}, notAfter: true},
		{key: fxRSA, kind: "RSA certificate", keyType: "RSA 2048", names: []any{fxGood}, notAfter: true},
		{key: fxExpired, kind: "certificate", keyType: "ECDSA P-256", problem: "expired", notAfter: true},
		{key: fxSoon, kind: "certificate", keyType: "ECDSA P-256", notAfter: true},
		{key: fxNotCert, kind: "certificate", problem: "not a certificate: no PEM block"},
		{key: fxMismatch, kind: "certificate", keyType: "ECDSA P-256", problem: "private key does not match", notAfter: true},
		{key: fxWrongName, kind: "certificate", keyType: "ECDSA P-256", problem: "does not cover wrongname.example.com", notAfter: true},
		{key: fxAccount, kind: "account key", keyType: "ECDSA P-256"},
		{key: fxToken, kind: "challenge token"},
		{key: fxOther, kind: "other"},
	} {
		r := byKey[tc.key]
		if r["kind"] != tc.kind {
			t.Errorf("%s: kind %v, want %s", tc.key, r["kind"], tc.kind)
		}
		if got, _ := r["key_type"].(string); got != tc.keyType {
			t.Errorf("%s: key_type %q, want %q", tc.key, got, tc.keyType)
		}
		if int(r["size"].(float64)) != len(fx.values[tc.key]) {
			t.Errorf("%s: size %v, want %d", tc.key, r["size"], len(fx.values[tc.key]))
		}
		if _, ok := r["modified"]; !ok {
			t.Errorf("%s: no modification time", tc.key)
		}
		problems, _ := json.Marshal(r["problems"])
		if tc.problem == "" && r["problems"] != nil {
			t.Errorf("%s: problems %s, want none", tc.key, problems)
		}
		if tc.problem != "" && !strings.Contains(string(problems), tc.problem) {
			t.Errorf("%s: problems %s, want one with %q", tc.key, problems, tc.problem)
		}
		if tc.names != nil && !slices.Equal(r["dns_names"].([]any), tc.names) {
			t.Errorf("%s: dns_names %v, want %v", tc.key, r["dns_names"], tc.names)
		}
		if _, ok := r["not_after"]; ok != tc.notAfter {
			t.Errorf("%s: not_after present %v, want %v", tc.key, ok, tc.notAfter)
		}
		if tc.notAfter && r["issuer"] != "certcache test CA" {
			t.Errorf("%s: issuer %v", tc.key, r["issuer"])
		}
	}

	// The table: one row per key, with the same facts.
	stdout, _, code = runCmd(t, "ls", fx.url())
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 1+len(want) || !strings.HasPrefix(lines[0], "KEY ") {
		t.Fatalf("table has %d lines, want a header and %d rows", len(lines), len(want))
	}
	for _, tc := range []struct{ key, re string }{
		{fxGood, `^a\.example\.com +certificate +\d+ +\S+ +\S+ \(in 8\dd\) +ECDSA P-256 +certcache test CA +a\.example\.com,www\.a\.example\.com +-$`},
		{fxRSA, `^a\.example\.com\+rsa +RSA certificate .* RSA 2048 `},
		{fxNotCert, `^bad\.example\.com +certificate +26 .* not a certificate: no PEM block`},
		{fxExpired, `^old\.example\.com .*\(\d+d ago\).* expired `},
		{fxAccount, `^acme_account\+key +account key .* ECDSA P-256 `},
		{fxToken, `^Zt0ken-abc\+http-01 +challenge token `},
		{fxOther, `^certcache-notes +other `},
	} {
		re := regexp.MustCompile(tc.re)
		if !slices.ContainsFunc(lines, re.MatchString) {
			t.Errorf("no row for %s matching %s", tc.key, tc.re)
		}
	}

	// -filter selects.
	stdout, _, _ = runCmd(t, "ls", "-json", "-filter", "*.example.com", fx.url())
	json.Unmarshal([]byte(stdout), &raw)
	if len(raw) != 6 {
		t.Errorf("-filter *.example.com: %d keys, want the 6 plain certificates", len(raw))
	}
}

// TestLsEmpty lists an empty cache: a header only, or [] in JSON.
func TestLsEmpty(t *testing.T) {
	u := "file://" + t.TempDir()
	if stdout, _, code := runCmd(t, "ls", "-json", u); code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("ls -json of an empty cache: %q, status %d", stdout, code)
	}
}

// TestInspect inspects every kind of value, and checks that no private
// key is ever printed.
func TestInspect(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		key  string
		code int
		want []string
	}{
		{fxGood, 0, []string{"private key  ECDSA P-256, matches the leaf (not shown)", "certificate 0 (leaf)", "DNS names    a.example.com, www.a.example.com",
			"certificate 1 (root)", "subject      CN=certcache test CA", "issuer       CN=certcache test CA", "ok: valid now"}},
		{fxRSA, 0, []string{"private key  RSA 2048, matches the leaf", "key          RSA 2048", "signature    ECDSA-SHA256", "ok:"}},
		{fxExpired, 1, []string{"problems:", "  - expired "}},
		{fxMismatch, 1, []string{"DOES NOT match the leaf", "the private key does not match the leaf"}},
		{fxWrongName, 1, []string{"the leaf does not cover wrongname.example.com"}},
		{fxNotCert, 1, []string{"not a certificate: no PEM block"}},
		{fxAccount, 0, []string{"kind         account key", "private key  ECDSA P-256 (not shown)", "thumbprint   "}},
		{fxToken, 0, []string{"kind         challenge token", "size         21 bytes", "ok"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "inspect", fx.url(), tc.key)
			if code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			jsonOut, _, jcode := runCmd(t, "inspect", "-json", fx.url(), tc.key)
			if jcode != tc.code {
				t.Errorf("-json: exit status %d, want %d", jcode, tc.code)
			}
			var in inspection
			if err := json.Unmarshal([]byte(jsonOut), &in); err != nil {
				t.Errorf("-json: %v", err)
			}
			if in.Valid != (tc.code == 0) {
				t.Errorf("-json: valid %v with exit status %d", in.Valid, tc.code)
			}
			for _, out := range []string{stdout, stderr, jsonOut} {
				assertNoPrivateKey(t, out, fx.values[tc.key], fx.keys[tc.key])
			}
		})
	}
	if _, stderr, code := runCmd(t, "inspect", fx.url(), "missing.example.com"); code != 1 || !strings.Contains(stderr, "no such key") {
		t.Errorf("inspect of a missing key: status %d, stderr %q", code, stderr)
	}
}

// assertNoPrivateKey fails if out shows any part of a PEM private key:
// its header, or any line of its base64 body, from keyPEM or from value
// (which holds the key first).
func assertNoPrivateKey(t *testing.T, out string, pems ...[]byte) {
	t.Helper()
	if strings.Contains(out, "-----BEGIN") || strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("output shows a PEM block:\n%s", out)
	}
	for _, p := range pems {
		s := string(p)
		end := strings.Index(s, "-----END")
		if !strings.Contains(s, "PRIVATE KEY-----") || end < 0 {
			continue
		}
		for _, line := range strings.Split(s[:end], "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line[:16]) {
				t.Errorf("output shows the private key's base64 (%q…)", line[:16])
			}
		}
	}
}

func TestExpiring(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		args []string
		code int
		keys []string // in order
	}{
		{[]string{}, 1, []string{fxExpired, fxSoon}}, // default window 21d
		{[]string{"-within", "0d"}, 1, []string{fxExpired}},
		{[]string{"-within", "5d"}, 1, []string{fxExpired}},
		{[]string{"-within", "11d"}, 1, []string{fxExpired, fxSoon}},
		{[]string{"-within", "9d"}, 1, []string{fxExpired}},
		{[]string{"-within", "120d"}, 1, []string{fxExpired, fxSoon, fxGood, fxRSA, fxMismatch, fxWrongName}},
		{[]string{"-within", "21d", "-filter", "a.*"}, 0, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"expiring", "-json", fx.url()}, tc.args...)
			stdout, stderr, code := runCmd(t, args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			var got []keyInfo
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, g := range got {
				keys = append(keys, g.Key)
			}
			// Soonest first; the certificates made in the same second
			// as each other may come in any order among themselves.
			if !slices.Equal(slices.Sorted(slices.Values(keys)), slices.Sorted(slices.Values(tc.keys))) {
				t.Errorf("keys %q, want %q", keys, tc.keys)
			}
			if !slices.IsSortedFunc(got, func(a, b keyInfo) int { return a.NotAfter.Compare(*b.NotAfter) }) {
				t.Errorf("keys %q are not soonest first", keys)
			}
			if len(keys) >= 2 && (keys[0] != fxExpired || keys[1] != fxSoon) {
				t.Errorf("keys %q do not begin with %s, %s", keys, fxExpired, fxSoon)
			}
			if !slices.Contains(tc.args, "-filter") && !strings.Contains(stderr, fxNotCert+": not a certificate") {
				t.Errorf("stderr does not report %s", fxNotCert)
			}
		})
	}
	stdout, _, code := runCmd(t, "expiring", fx.url(), "-within", "21d")
	if code != 1 || !regexp.MustCompile(`(?m)^old\.example\.com +\S+ +expired \d+d ago +certcache test CA +old\.example\.com$`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^soon\.example\.com +\S+ +in 9d `).MatchString(stdout) {
		t.Errorf("expiring -within 21d: status %d, table\n%s", code, stdout)
	}
	stdout, _, code = runCmd(t, "expiring", fx.url(), "-within", "1d", "-filter", "a.example.com*")
	if code != 0 || !strings.Contains(stdout, "no certificate expires within 1d") {
		t.Errorf("nothing expiring: status %d, output %q", code, stdout)
	}
}

func TestRm(t *testing.T) {
	fx := newFixture(t)
	stdout, stderr, code := runCmd(t, "rm", fx.url(), fxGood, fxToken, "missing.example.com")
	if code != 1 || !strings.Contains(stderr, `"missing.example.com": no such key`) {
		t.Errorf("rm with a missing key: status %d, stderr %q; want 1 and the missing key named", code, stderr)
	}
	if stdout != "removed "+fxGood+"\nremoved "+fxToken+"\n" {
		t.Errorf("stdout %q", stdout)
	}
	if _, _, code := runCmd(t, "rm", "-f", fx.url(), "missing.example.com"); code != 0 {
		t.Errorf("rm -f of a missing key: status %d, want 0", code)
	}
	stdout, _, _ = runCmd(t, "ls", "-json", fx.url())
	var infos []keyInfo
	json.Unmarshal([]byte(stdout), &infos)
	if len(infos) != len(fx.values)-2 || slices.ContainsFunc(infos, func(i keyInfo) bool { return i.Key == fxGood || i.Key == fxToken }) {
		t.Errorf("after rm, ls shows %d keys: %v", len(infos), infos)
	}
	stdout, _, code = runCmd(t, "rm", "-json", fx.url(), fxOther)
	var res []rmResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || len(res) != 1 || res[0].Result != "removed" {
		t.Errorf("rm -json: %v, status %d, %v", res, code, err)
	}
}
