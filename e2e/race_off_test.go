//go:build !race

package e2e

// raceEnabled: the package runs under the race detector (.ci/run runs it
// once without and once with).
const raceEnabled = false
