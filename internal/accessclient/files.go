package accessclient

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/sallyport/sallyport/internal/problem"
)

// load reads the application's token file; nil when there is none.
func load(dir, key string) (*saved, error) {
	path := filepath.Join(dir, key+".json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, problem.Newf(400, "token_file", "check its permissions, or remove it and sign in again", "The token file %s cannot be read (%v)", path, err)
	}
	var s saved
	if err := json.Unmarshal(raw, &s); err != nil || s.AccessToken == "" || s.TokenURL == "" {
		return nil, problem.Newf(400, "token_file", "remove it and sign in again with 'sallyport access login'", "The token file %s is damaged", path)
	}
	return &s, nil
}

// save writes the token file atomically: the directory 0700, the file
// 0600 (it holds secrets).
func save(dir, key string, s *saved) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return problem.Newf(400, "token_file", "check the permissions of your configuration directory", "The directory %s for the tokens cannot be made (%v)", dir, err)
	}
	os.Chmod(dir, 0o700)
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, key+".*.tmp")
	if err == nil {
		err = f.Chmod(0o600)
		if err == nil {
			_, err = f.Write(append(raw, '\n'))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, key+".json"))
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}
	if err != nil {
		return problem.Newf(400, "token_file", "check the permissions of "+dir, "The tokens cannot be saved in %s (%v)", dir, err)
	}
	return nil
}

// Lock timing: a lock file older than lockStale is left by a command
// that died, and is taken over.
const (
	lockWait  = 30 * time.Second
	lockStale = 2 * time.Minute // longer than a refresh can take (60 s HTTP timeout)
	lockRetry = 50 * time.Millisecond
)

// lock takes the application's refresh lock (a file made with O_EXCL),
// waiting for another command's refresh to end.
func lock(ctx context.Context, dir, key string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, key+".lock")
	deadline := time.Now().Add(lockWait)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, problem.Newf(400, "token_file", "check the permissions of "+dir, "The lock file %s cannot be made (%v)", path, err)
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > lockStale {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, problem.Newf(409, "token_locked", "remove "+path+" if no other 'sallyport access' command runs", "Another command has been refreshing the token for %s", lockWait)
		}
		t := time.NewTimer(lockRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
