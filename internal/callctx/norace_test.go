//go:build !race

package callctx

const raceEnabled = false
