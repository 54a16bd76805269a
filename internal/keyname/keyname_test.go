package keyname

import (
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"example.com", "example.com"},
		{"example.com+rsa", "example.com+rsa"},
		{"acme_account+key", "acme_account+key"},
		{"a/b", "a%2Fb"},
		{"a%2Fb", "a%252Fb"},
		{"..", "%2E."},
		{".", "%2E"},
		{"../x", "%2E.%2Fx"},
		{"a b", "a%20b"},
		{"ü", "%C3%BC"},
		{"~x", "%7Ex"},
	} {
		if got := Encode(tc.key, 255); got != tc.want {
			t.Errorf("Encode(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestEncodeLongIsBoundedAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, key := range []string{
		strings.Repeat("a", 300), strings.Repeat("a", 299) + "b", strings.Repeat("/", 100),
		strings.Repeat("/", 101), strings.Repeat("a", 255), strings.Repeat("a", 256),
	} {
		for _, max := range []int{MinMax, 100, 255} {
			got := Encode(key, max)
			if len(got) > max {
				t.Errorf("Encode(%.10q…, %d) is %d bytes", key, max, len(got))
			}
			id := got + "@" + string(rune(max))
			if prev, dup := seen[id]; dup {
				t.Errorf("%.10q… and %.10q… both encode to %q", key, prev, got)
			}
			seen[id] = key
		}
	}
}

func FuzzEncodeInjective(f *testing.F) {
	f.Add("a/b", "a%2Fb")
	f.Add("..", "%2E.")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a != b && Encode(a, 255) == Encode(b, 255) {
			t.Fatalf("%q and %q collide", a, b)
		}
		if e := Encode(a, 255); strings.HasPrefix(e, ".") || strings.ContainsAny(e, "/\\\x00") {
			t.Fatalf("Encode(%q) = %q is not a safe file name", a, e)
		}
	})
}
