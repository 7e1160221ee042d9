package datadir

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/store/postgres"
	"github.com/sallyport/sallyport/internal/store/sqlite"
)

// storeOpenTimeout bounds connecting to PostgreSQL and migrating its
// schema when a command opens the store.
const storeOpenTimeout = 30 * time.Second

// ErrStoreUnreachable is wrapped by the failure of OpenStore when the
// PostgreSQL server could not be reached or does not take connections
// yet: a later attempt may succeed ('cloud serve --store-wait').
var ErrStoreUnreachable = errors.New("the store cannot be reached")

// IsPostgres reports whether dsn names a PostgreSQL store.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// CheckStoreURL checks a store address given to init or copy: "" or
// "sqlite:" (the data directory's store.db), "sqlite:PATH", or a
// postgres:// (postgresql://) URL that carries no password. The password
// never goes on a command line or into the settings file: it comes from
// PGPASSWORD, ~/.pgpass, or a password file (see PasswordFromFile).
func CheckStoreURL(dsn string) error {
	if dsn == "" || strings.HasPrefix(dsn, "sqlite:") {
		return nil
	}
	if !IsPostgres(dsn) {
		return problem.Newf(400, "store_dsn", "give sqlite: (the default) or a URL postgres://USER@HOST:PORT/DATABASE",
			"The store %q is neither sqlite: nor a postgres:// URL", dsn)
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return problem.Newf(400, "store_dsn", "write it as postgres://USER@HOST:PORT/DATABASE",
			"The store address is not a valid PostgreSQL URL")
	}
	if _, ok := u.User.Password(); ok || u.Query().Has("password") {
		return problem.New(400, "store_password_in_url",
			"remove it from the URL and give it in PGPASSWORD or with --store-password-file (a file of mode 0600)",
			"The store URL carries a password, which would be visible in the process list and kept in cloud.json")
	}
	return nil
}

// PasswordFromFile reads a store password file: its first line, which
// must not be empty. The file must not be readable by group or others.
func PasswordFromFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", problem.Newf(400, "store_password_file", "give a file that exists and this user may read",
			"The store password file %s cannot be read (%v)", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", problem.Newf(400, "store_password_file", fmt.Sprintf("make it private with 'chmod 600 %s'", path),
			"The store password file %s may be read by others (mode %04o)", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", problem.Newf(400, "store_password_file", "give a file that this user may read",
			"The store password file %s cannot be read (%v)", path, err)
	}
	pw, _, _ := strings.Cut(string(raw), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", problem.Newf(400, "store_password_file", "write the password on the file's first line",
			"The store password file %s is empty", path)
	}
	return pw, nil
}

// withPassword returns dsn with the password of the settings' password
// file, if it names one; otherwise dsn as it is, and the PostgreSQL driver
// takes PGPASSWORD or ~/.pgpass.
func withPassword(dsn, passwordFile string) (string, error) {
	if passwordFile == "" {
		return dsn, nil
	}
	pw, err := PasswordFromFile(passwordFile)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", problem.Newf(400, "store_dsn", "write it as postgres://USER@HOST:PORT/DATABASE", "The store address is not a valid PostgreSQL URL")
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String(), nil
}

// openRawStore opens the store itself: keys as stored.
func openRawStore(dataDir string, s Settings) (store.Store, error) {
	dsn := s.Store
	switch {
	case dsn == "" || dsn == "sqlite:":
		return openSQLite(filepath.Join(dataDir, StoreFile))
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err := CheckStoreURL(dsn); err != nil {
		return nil, err
	}
	full, err := withPassword(dsn, s.StorePasswordFile)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	st, err := postgres.Open(ctx, full)
	if err != nil {
		p := problem.Newf(503, "store_unreachable",
			"check that PostgreSQL runs there and accepts this user, and that the password is in PGPASSWORD or the settings' store_password_file; then start again",
			"The PostgreSQL store cannot be opened (%s)", redact(err.Error(), full))
		if errors.Is(err, postgres.ErrUnreachable) {
			p = p.Wrap(ErrStoreUnreachable)
		}
		return nil, p
	}
	return st, nil
}

func openSQLite(path string) (store.Store, error) {
	st, err := sqlite.Open(path)
	if err != nil {
		return nil, problem.Newf(500, "store_open", "check the file's permissions and that the disk is not full", "The store %s cannot be opened (%v)", path, err)
	}
	return st, nil
}

// redact removes the password of dsn from msg, should a driver ever
// quote the address it was given.
func redact(msg, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return msg
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, u.User.String(), u.User.Username()+":xxxxx")
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}
