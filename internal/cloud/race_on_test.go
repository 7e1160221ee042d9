//go:build race

package cloud

// raceEnabled: the race detector slows argon2id down tenfold and more, so
// latency targets are not measured under it.
const raceEnabled = true
