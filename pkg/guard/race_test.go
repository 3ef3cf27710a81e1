//go:build race

package guard

// raceEnabled reports a -race build (sync.Pool then drops items at random).
const raceEnabled = true
