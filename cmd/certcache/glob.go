package main

import (
	"fmt"
	"path"
	"strings"
)

// A glob selects keys with a shell pattern: * matches any run of
// characters, ? any one, [a-z] a class, \ quotes the next character.
// Unlike path.Match, * and ? also match "/": a cache key is a name, not a
// path, and "*" must select every key.
type glob struct {
	pattern string // with "/" mapped to sep
	prefix  string // the literal start every match has, for List
}

// sep stands for "/" while path.Match runs: no valid key holds a NUL (see
// certcache.ValidateKey), and path.Match treats it as any other character.
const sep = "\x00"

// newGlob compiles pattern; "" matches every key.
func newGlob(pattern string) (*glob, error) {
	if pattern == "" {
		pattern = "*"
	}
	p := strings.ReplaceAll(pattern, "/", sep)
	if _, err := path.Match(p, ""); err != nil {
		return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	return &glob{pattern: p, prefix: literalPrefix(pattern)}, nil
}

// match reports whether key matches.
func (g *glob) match(key string) bool {
	ok, _ := path.Match(g.pattern, strings.ReplaceAll(key, "/", sep))
	return ok
}

// literalPrefix returns the part of pattern before its first special
// character.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}
