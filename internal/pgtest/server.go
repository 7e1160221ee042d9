package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// superuser is the cluster's superuser; tests connect as it, without a
// password (trust authentication on 127.0.0.1 and the socket only).
const superuser = "sallyport"

// startTimeout bounds initdb and the server's start (pg_ctl -w).
const startTimeout = 2 * time.Minute

// server is a running PostgreSQL cluster.
type server struct {
	bin  string // directory of initdb, pg_ctl and postgres
	dir  string // temporary directory: data/, the socket, the log
	port int
	as   *account // nil: run as the current user
	seq  int      // databases created, for their names
	// strategy is " STRATEGY FILE_COPY" from PostgreSQL 15 on: with fsync
	// off, copying template1's files takes a third of the time of the
	// default WAL_LOG (the PostgreSQL store's tests: 33 s against 51 s).
	strategy string
}

var (
	mu       sync.Mutex
	shared   *server
	startErr error // the first start's failure, repeated to every test
	inMain   bool  // Main runs the tests (and will stop the server)
)

// Main runs the tests of m, stops the server if a test started it, and
// exits. Call it (or Run) from the TestMain of every package that uses DSN:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns the tests' exit code, for a
// TestMain that checks more after them (goroutine leaks).
func Run(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
		shared = nil
	}
	mu.Unlock()
	return code
}

// DSN creates a new, empty database on the test binary's server (started
// at the first call) and returns its address, a postgres:// URL. The
// database is dropped when the test ends. Without PostgreSQL's programs
// the test is skipped, or fails under CI=true.
func DSN(t testing.TB) string {
	t.Helper()
	bin, err := findBin()
	if errors.Is(err, errBadEnv) {
		t.Fatalf("pgtest: %v", err)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v; .ci/run installs Debian's postgresql package, or set SALLYPORT_PG_BIN to the directory of initdb", err)
		}
		t.Skipf("pgtest: %v (set SALLYPORT_PG_BIN to the directory of initdb to run this test)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main (or Run), which stops the server")
	}
	if shared == nil && startErr == nil {
		shared, startErr = start(bin)
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	shared.seq++
	name := fmt.Sprintf("t%d_%s", shared.seq, dbName(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shared.exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+shared.strategy); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	srv := shared
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return srv.url(name)
}

// dbName is a test name made fit for a database name: lower-case letters,
// digits and underscores, at most 40 bytes (PostgreSQL keeps 63).
func dbName(test string) string {
	b := []byte(strings.ToLower(test))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[len(b)-40:]
	}
	return string(b)
}

// url is the address of database name on s.
func (s *server) url(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, name)
}

// exec runs one statement in the maintenance database "postgres".
func (s *server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, sql)
	return err
}

// errBadEnv is findBin's failure when SALLYPORT_PG_BIN is set but wrong:
// a test fails then, rather than skip what it was asked to run.
var errBadEnv = errors.New("pgtest")

// findBin returns the directory of PostgreSQL's server programs:
// $SALLYPORT_PG_BIN, else the one of initdb on PATH, else the newest
// /usr/lib/postgresql/VERSION/bin (Debian keeps them off PATH).
func findBin() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("SALLYPORT_PG_BIN"); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("%w: SALLYPORT_PG_BIN=%s does not hold initdb, pg_ctl and postgres", errBadEnv, dir)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL's server programs (initdb, pg_ctl, postgres) are not installed: none on PATH or in /usr/lib/postgresql/*/bin")
}

// versionOf is the major version in /usr/lib/postgresql/VERSION/bin (0
// when it is not a number).
func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// start creates a cluster in a new temporary directory and starts it.
func start(bin string) (*server, error) {
	as, err := runAs()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: the server's user must reach the directory, and the
	// test directory's parents are the test user's alone.
	dir, err := os.MkdirTemp("", "sallyport-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: dir, as: as}
	if err := s.init(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// init runs initdb and starts the server on a free port.
func (s *server) init() error {
	if s.as != nil {
		if err := os.Chown(s.dir, s.as.uid, s.as.gid); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	if err := s.startServer(); err != nil {
		return err
	}
	version, err := s.version()
	if err != nil {
		_ = s.stop()
		return err
	}
	if version >= 150000 {
		s.strategy = " STRATEGY FILE_COPY"
	}
	return nil
}

// startServer starts the initialised cluster on s.port and waits until
// it takes connections.
func (s *server) startServer() error {
	// fsync and the like are off: a test cluster is thrown away, and they
	// cost seconds per test binary.
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1", "-p " + strconv.Itoa(s.port),
		"-c unix_socket_directories=" + s.dir, "-c max_connections=300",
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
	}, " ")
	data := filepath.Join(s.dir, "data")
	logFile := filepath.Join(s.dir, "postgres.log")
	if out, err := s.run("pg_ctl", "-D", data, "-l", logFile, "-w", "-t", strconv.Itoa(int(startTimeout.Seconds())), "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, tail(log))
	}
	return nil
}

// stopServer stops the cluster (fast: open connections are ended) and
// keeps its files.
func (s *server) stopServer() error {
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// Cluster is a PostgreSQL server of one test's own, which the test may
// stop and start again (a restart or a fail-over of the store), unlike
// the server DSN shares among a binary's tests.
type Cluster struct {
	s       *server
	stopped bool
}

// NewCluster initialises and starts a cluster, stopped and removed when
// the test ends. Without PostgreSQL's programs the test is skipped, or
// fails under CI=true (as DSN).
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := findBin()
	if errors.Is(err, errBadEnv) {
		t.Fatalf("pgtest: %v", err)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v; .ci/run installs Debian's postgresql package, or set SALLYPORT_PG_BIN to the directory of initdb", err)
		}
		t.Skipf("pgtest: %v (set SALLYPORT_PG_BIN to the directory of initdb to run this test)", err)
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c := &Cluster{s: s}
	t.Cleanup(func() {
		if c.stopped {
			_ = os.RemoveAll(s.dir)
			return
		}
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// DSN creates a new, empty database on the cluster and returns its
// address, a postgres:// URL (the cluster goes with the test).
func (c *Cluster) DSN(t testing.TB) string {
	t.Helper()
	c.s.seq++
	name := fmt.Sprintf("t%d_%s", c.s.seq, dbName(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.s.exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+c.s.strategy); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return c.s.url(name)
}

// Stop stops the cluster: its connections end, and new ones are refused
// until Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.s.stopServer(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.stopped = true
}

// Start starts the stopped cluster again, on the same port.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.s.startServer(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	c.stopped = false
}

// version is the server's server_version_num (150004 for 15.4).
func (s *server) version() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return 0, fmt.Errorf("connect to the new server: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var v int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
		return 0, fmt.Errorf("server version: %w", err)
	}
	return v, nil
}

// stop stops the server (fast: open connections are ended) and removes
// its directory.
func (s *server) stop() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "stop")
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

// run runs one of PostgreSQL's programs as the server's user, in its
// directory, and returns its output.
func (s *server) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.as != nil {
		setUser(cmd, s.as)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// tail is the end of a log, for an error.
func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// freePort returns a port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// account is the unprivileged user the server runs as under root.
type account struct {
	name     string
	uid, gid int
}

// runAsName is the user created to run the server when there is no
// "postgres" user.
const runAsName = "sallyport-pgtest"

// runAs returns the user to run the server as: nil when not root, else
// "postgres", else runAsName (created with useradd when missing).
func runAs() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", runAsName} {
		if a, err := lookup(name); err == nil {
			return a, nil
		}
	}
	out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", runAsName).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: useradd %s: %w: %s", runAsName, err, out)
	}
	return lookup(runAsName)
}

// lookup finds a user's ids.
func lookup(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	return &account{name: name, uid: uid, gid: gid}, nil
}
