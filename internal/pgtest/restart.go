package pgtest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Restart stops the test binary's server as a fail-over would (fast:
// every connection is cut), keeps it down for down, and starts it again
// on the same port with the same data. Every database of the binary goes
// through it: call it only from a test that does not run in parallel
// with others using DSN (no t.Parallel).
func Restart(t testing.TB, down time.Duration) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared == nil {
		t.Fatal("pgtest: Restart before DSN: no server runs")
	}
	data := filepath.Join(shared.dir, "data")
	if out, err := shared.run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop"); err != nil {
		t.Fatalf("pgtest: pg_ctl stop: %v: %s", err, out)
	}
	time.Sleep(down) // the outage the test asks for, not a synchronisation
	if err := shared.startServer(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// startServer starts the initialised cluster on its port (pg_ctl -w).
func (s *server) startServer() error {
	data := filepath.Join(s.dir, "data")
	logFile := filepath.Join(s.dir, "postgres.log")
	if out, err := s.run("pg_ctl", "-D", data, "-l", logFile, "-w", "-t", strconv.Itoa(int(startTimeout.Seconds())), "-o", s.options(), "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return nil
}
