//go:build race

package callctx

// raceEnabled: the race detector allocates on its own account.
const raceEnabled = true
