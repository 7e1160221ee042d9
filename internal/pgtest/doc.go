// Package pgtest runs a real PostgreSQL server for tests: it finds the
// server's programs (initdb, pg_ctl, postgres), creates a cluster in a
// temporary directory, starts it on a free port of 127.0.0.1 with its Unix
// socket in that directory, and gives each test a new, empty database of
// its own. One server serves the whole test binary: the package's
// TestMain calls Main, which stops it (pg_ctl stop -m fast) and removes
// its directory when the tests end.
//
// PostgreSQL refuses to run as root, and CI runs as root: then the server
// runs as the system user "postgres" (Debian's package creates it), else as
// "sallyport-pgtest", created with useradd when missing.
//
// Without the programs a test is skipped, or fails under CI=true, where
// .ci/run installs them. It is for tests only, and imports nothing of ours.
package pgtest
