package cloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

// Limits of the ACME storage: certmagic's keys are short paths
// (certificates/CA/HOST/HOST.crt, a host at most 253 bytes, twice), its
// values PEM chains and JSON of a few KiB.
const (
	maxACMEKey   = 1024
	maxACMEValue = 1 << 20
)

// Timing of the ACME storage's locks: a lock taken lasts acmeLockTTL, and
// its holder extends it every third of that while it holds it, so a
// crashed holder blocks the others for acmeLockTTL at most; a caller
// waiting for a lock tries again every acmeLockPoll.
const (
	acmeLockTTL  = 30 * time.Second
	acmeLockPoll = time.Second
)

// acmeDir is where the previous version kept certificates and ACME
// accounts, in the data directory (certmagic's file storage). Its files
// are imported into the store once, then it is renamed acmeDir+".imported".
const acmeDir = "acme"

// acmeStorage is certmagic's Storage (with TryLocker) over the cloud's
// store: certificates, their keys and the ACME accounts are shared by
// every instance on the store, and the locks that make one instance at a
// time order a certificate are rows of it (docs/certificates.md).
type acmeStorage struct {
	st     store.Store
	self   string // the instance's id: the prefix of the lock owners
	now    func() time.Time
	log    *slog.Logger
	events *eventlog.Log
	ttl    time.Duration
	poll   time.Duration

	mu   sync.Mutex
	held map[string]*heldLock // the locks this instance holds, by name
}

// heldLock is a lock this instance holds and keeps extending.
type heldLock struct {
	owner   string        // this acquisition's owner: the instance id and a random suffix
	started bool          // taken in the store, refresher running (false: being taken)
	stop    chan struct{} // closed to stop the refresher
	done    chan struct{} // closed when it has stopped
}

// errACMEClosed is TryLock's answer once the cloud is stopping.
var errACMEClosed = errors.New("the ACME storage is closed: the cloud is stopping")

var (
	_ certmagic.Storage   = (*acmeStorage)(nil)
	_ certmagic.TryLocker = (*acmeStorage)(nil)
)

func newACMEStorage(st store.Store, instance string, now func() time.Time, log *slog.Logger, events *eventlog.Log) *acmeStorage {
	return &acmeStorage{st: st, self: instance, now: now, log: log, events: events,
		ttl: acmeLockTTL, poll: acmeLockPoll, held: map[string]*heldLock{}}
}

// checkACMEKey refuses a key certmagic would never make: empty, too long,
// with a leading, trailing or double slash, or a byte outside printable
// ASCII.
func checkACMEKey(key string) error {
	if key == "" || len(key) > maxACMEKey || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return fmt.Errorf("the ACME storage key %.80q is not a relative path of at most %d bytes", key, maxACMEKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return fmt.Errorf("the ACME storage key %.80q holds a byte outside printable ASCII", key)
		}
	}
	return nil
}

// Store puts value at key.
func (a *acmeStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := checkACMEKey(key); err != nil {
		return err
	}
	if len(value) > maxACMEValue {
		return fmt.Errorf("the ACME storage value of %s is %d bytes, more than the %d allowed", key, len(value), maxACMEValue)
	}
	return a.st.PutACMEObject(ctx, store.ACMEObject{Key: key, Value: value, Modified: a.now()})
}

// Load returns the value at key, or an error that is fs.ErrNotExist.
func (a *acmeStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := checkACMEKey(key); err != nil {
		return nil, err
	}
	o, err := a.st.ACMEObject(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return o.Value, err
}

// Delete deletes key and every key under it; none is not an error.
func (a *acmeStorage) Delete(ctx context.Context, key string) error {
	if err := checkACMEKey(key); err != nil {
		return err
	}
	_, err := a.st.DeleteACMEObjects(ctx, key)
	return err
}

// Exists reports whether key is a value or has keys under it.
func (a *acmeStorage) Exists(ctx context.Context, key string) bool {
	if checkACMEKey(key) != nil {
		return false
	}
	objs, err := a.st.ListACMEObjects(ctx, key)
	return err == nil && len(objs) > 0
}

// List returns the keys under prefix: its children ("directories" and
// values), or with recursive every key and directory below it, as
// certmagic's file storage does. Nothing under prefix is fs.ErrNotExist.
func (a *acmeStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if prefix != "" {
		if err := checkACMEKey(prefix); err != nil {
			return nil, err
		}
	}
	objs, err := a.st.ListACMEObjects(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: %w", prefix, fs.ErrNotExist)
	}
	var out []string
	seen := map[string]bool{}
	for _, o := range objs {
		rel := o.Key
		if prefix != "" {
			var ok bool
			if rel, ok = strings.CutPrefix(o.Key, prefix+"/"); !ok {
				continue // prefix itself: a value, with nothing under it
			}
		}
		parts := strings.Split(rel, "/")
		if !recursive {
			parts = parts[:1]
		}
		for i := range parts {
			k := path.Join(prefix, strings.Join(parts[:i+1], "/"))
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out, nil
}

// Stat describes key: a value (its time and size), a directory (keys
// under it), or fs.ErrNotExist.
func (a *acmeStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := checkACMEKey(key); err != nil {
		return certmagic.KeyInfo{}, err
	}
	o, err := a.st.ACMEObject(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: o.Modified, Size: int64(len(o.Value)), IsTerminal: true}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return certmagic.KeyInfo{}, err
	}
	objs, err := a.st.ListACMEObjects(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(objs) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	info := certmagic.KeyInfo{Key: key}
	for _, o := range objs {
		if o.Modified.After(info.Modified) {
			info.Modified = o.Modified
		}
	}
	return info, nil
}

// Lock takes the lock name, waiting while another holds it (another
// instance, or another task of this one), until ctx ends.
func (a *acmeStorage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := a.TryLock(ctx, name)
		if ok || err != nil {
			return err
		}
		t := time.NewTimer(a.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// TryLock takes the lock name if nobody holds it (or its holder let it
// expire), and keeps it extended until Unlock.
func (a *acmeStorage) TryLock(ctx context.Context, name string) (bool, error) {
	var suffix [6]byte
	rand.Read(suffix[:])
	h := &heldLock{owner: a.self + "/" + hex.EncodeToString(suffix[:]), stop: make(chan struct{}), done: make(chan struct{})}
	// Reserved in the map first (another task of this instance waits), taken
	// in the store without holding the mutex.
	a.mu.Lock()
	switch {
	case a.held == nil:
		a.mu.Unlock()
		return false, errACMEClosed
	case a.held[name] != nil:
		a.mu.Unlock()
		return false, nil
	}
	a.held[name] = h
	a.mu.Unlock()
	now := a.now()
	_, err := a.st.TakeACMELock(ctx, store.ACMELock{Name: name, Owner: h.owner, ExpiresAt: now.Add(a.ttl)}, now)
	a.mu.Lock()
	closed := a.held == nil
	switch {
	case err == nil && !closed:
		h.started = true
		go a.refresh(name, h)
	case !closed:
		delete(a.held, name)
	}
	a.mu.Unlock()
	switch {
	case closed:
		if err == nil {
			a.release(ctx, name, h.owner)
		}
		return false, errACMEClosed
	case errors.Is(err, store.ErrConflict):
		return false, nil
	}
	return err == nil, err
}

// refresh extends the held lock every third of its lifetime until it is
// released. A lock found taken over (this instance stalled past its
// expiry) is a warning: another instance may be ordering the same
// certificate.
func (a *acmeStorage) refresh(name string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(a.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.ttl/3)
		now := a.now()
		holder, err := a.st.TakeACMELock(ctx, store.ACMELock{Name: name, Owner: h.owner, ExpiresAt: now.Add(a.ttl)}, now)
		cancel()
		switch {
		case errors.Is(err, store.ErrConflict):
			a.events.Event(eventlog.ACMELockLost, fmt.Sprintf("The ACME lock %s expired before this instance could extend it and was taken by %s: "+
				"two instances may order the same certificate (check the store's latency and this machine's load)", name, holder.Owner),
				"lock", name, "holder", holder.Owner)
			return
		case err != nil:
			// The store did not answer: try again at the next tick,
			// while the lock has not expired.
			a.log.Warn("extending an ACME lock failed", "lock", name, "error", err.Error())
		}
	}
}

// Unlock releases the lock name. One this instance no longer holds
// (taken over after it expired) is not an error: there is nothing left to
// release.
func (a *acmeStorage) Unlock(ctx context.Context, name string) error {
	a.mu.Lock()
	h := a.held[name]
	if h != nil && h.started {
		delete(a.held, name)
	}
	a.mu.Unlock()
	if h == nil || !h.started {
		return nil
	}
	close(h.stop)
	<-h.done
	return a.release(ctx, name, h.owner)
}

// release deletes the lock's row, even when ctx has ended (a cancelled
// order), bounded by a few seconds.
func (a *acmeStorage) release(ctx context.Context, name, owner string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.st.ReleaseACMELock(ctx, name, owner); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// close stops extending the locks still held and releases them (the
// cloud is stopping); later TryLocks fail.
func (a *acmeStorage) close() {
	a.mu.Lock()
	held := a.held
	a.held = nil
	a.mu.Unlock()
	for name, h := range held {
		if !h.started {
			continue // its TryLock sees the storage closed and releases it
		}
		close(h.stop)
		<-h.done
		if err := a.release(context.Background(), name, h.owner); err != nil {
			a.log.Warn("releasing an ACME lock failed; it expires by itself", "lock", name, "error", err.Error())
		}
	}
}

// startACMEStorage makes the ACME storage over the server's store, after
// importing the previous version's directory into it.
func (s *Server) startACMEStorage() *acmeStorage {
	a := newACMEStorage(s.store, s.InstanceID(), s.now, s.log, s.events)
	s.importACMEDir(context.Background(), a)
	return a
}

// importACMEDir moves the files of the previous version's ACME storage
// (DATADIR/acme: certificates, their keys, accounts) into the store, once:
// a key the store holds already (another instance imported first, or
// ordered since) is kept; the directory is then renamed acme.imported.
// Its lock files are left out. A directory that cannot be read is a
// warning: its certificates are ordered again.
func (s *Server) importACMEDir(ctx context.Context, a *acmeStorage) {
	dir := filepath.Join(s.cfg.DataDir, acmeDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == "locks" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || checkACMEKey(key) != nil {
			return nil
		}
		if _, err := a.st.ACMEObject(ctx, key); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := a.Store(ctx, key, b); err != nil {
			return err
		}
		n++
		return nil
	})
	if err == nil {
		err = os.Rename(dir, dir+".imported")
	}
	if err != nil {
		s.log.Warn("importing the previous ACME certificates into the store failed; they are ordered again when needed", "dir", dir, "error", err.Error())
		return
	}
	s.events.Event(eventlog.ACMEStorageImported, fmt.Sprintf("The ACME certificates and accounts of %s (%d files) were moved into the store, shared by every instance: %s.imported can be deleted", dir, n, dir),
		"dir", dir, "files", fmt.Sprint(n))
}
