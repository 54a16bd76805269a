// Package authority marks a read that must come from the authoritative
// store, never from a copy in front of it.
//
// Issuance coordination decides from what it reads whether a node orders a
// certificate: a copy in a memory front may be older than another node's
// renewal, and a stale copy served because the store failed would hide the
// failure. A read made with Context skips fresh copies, never serves a
// stale one, and reports the store's error as it is; its result still
// refills the faster tiers.
package authority

import "context"

type key struct{}

// Context returns ctx marked for a read from the authority.
func Context(ctx context.Context) context.Context {
	if Required(ctx) {
		return ctx
	}
	return context.WithValue(ctx, key{}, true)
}

// Required reports whether ctx is marked by Context.
func Required(ctx context.Context) bool {
	return ctx.Value(key{}) != nil
}
