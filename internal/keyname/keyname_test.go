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

func FuzzDecodeInvertsEncode(f *testing.F) {
	for _, k := range []string{"example.com", "a/b", "..", "~x", "ü", strings.Repeat("x/", 200)} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if key == "" {
			return // not a valid key; Encode is never given one
		}
		name := Encode(key, 255)
		got, hashed, err := Decode(name)
		if err != nil {
			t.Fatalf("Decode(Encode(%q)) = %v", key, err)
		}
		if hashed != (len(name) != len(Encode(key, 1<<20))) {
			t.Fatalf("Decode(%q) hashed = %v", name, hashed)
		}
		if !hashed && got != key {
			t.Fatalf("Decode(Encode(%q)) = %q", key, got)
		}
		if hashed && !strings.HasPrefix(key, got) {
			t.Fatalf("Decode(%q) = %q, not a prefix of %q", name, got, key)
		}
	})
}

func TestDecodeRefusesStrayNames(t *testing.T) {
	for _, name := range []string{"", ".tmp-123", "a%2", "a%zz", "a b", "x~123"} {
		if k, _, err := Decode(name); err == nil {
			t.Errorf("Decode(%q) = %q, want an error", name, k)
		}
	}
}
