package cloud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/argon2id"
	"golang.org/x/time/rate"

	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
)

// TokenLifetime is how long an admin API token lives.
const TokenLifetime = 12 * time.Hour

// principal is the authenticated caller of an admin API request.
type principal struct {
	User   store.User
	Tenant store.Tenant
}

// dummyHash is compared against when a user does not exist, so that an
// unknown user costs as much time as a wrong password. It is made on first
// use: hashing at package init would cost every sallyport command (the
// connector too) about 160 ms and 64 MiB at start-up.
var dummyHash = sync.OnceValue(func() string {
	h, _ := argon2id.CreateHash("sallyport-dummy-password", argon2id.DefaultParams)
	return h
})

// hashSlots bounds the password hashes computed at once: each argon2id
// hash takes 64 MiB, so a burst of sign-ins must queue, not grow memory.
var hashSlots = make(chan struct{}, 2)

// withHashSlot runs f when a hashing slot is free, or fails with ctx.
func withHashSlot(ctx context.Context, f func()) error {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-hashSlots }()
	f()
	return nil
}

// comparePassword checks a password against an argon2id hash, within a slot.
func comparePassword(ctx context.Context, password, hash string) bool {
	ok := false
	withHashSlot(ctx, func() {
		m, err := argon2id.ComparePasswordAndHash(password, hash)
		ok = err == nil && m
	})
	return ok
}

var errBadCredentials = problem.New(http.StatusUnauthorized, "bad_credentials",
	"The user name or password is wrong",
	"check both and try again; the user name is the full name@domain")

// checkPassword authenticates a user by name and password.
func (s *Server) checkPassword(ctx context.Context, name, password string) (store.User, store.Tenant, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	_, domain, ok := splitUser(name)
	if !ok {
		return store.User{}, store.Tenant{}, problem.Newf(http.StatusBadRequest, "bad_user_name",
			"give the full user name, for example admin@contoso.com",
			"%q is not a user name of the form name@domain", truncate(name, 80))
	}
	u, err := s.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		comparePassword(ctx, password, dummyHash())
		if _, terr := s.store.TenantByDomain(ctx, domain); errors.Is(terr, store.ErrNotFound) {
			return store.User{}, store.Tenant{}, problem.Newf(http.StatusUnauthorized, "no_tenant",
				"sign in with a user of your organisation's own domain, for example admin@contoso.com for the tenant contoso.com",
				"No tenant owns the domain %s of user %s", domain, name)
		}
		return store.User{}, store.Tenant{}, errBadCredentials
	}
	if err != nil {
		return store.User{}, store.Tenant{}, err
	}
	if !comparePassword(ctx, password, u.PasswordHash) {
		return store.User{}, store.Tenant{}, errBadCredentials
	}
	t, err := s.store.TenantByID(ctx, u.TenantID)
	if err != nil {
		return store.User{}, store.Tenant{}, err
	}
	return u, t, nil
}

// newToken returns a new bearer token and its stored hash.
func newToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	token = "spt_" + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

// authenticate finds the principal of a request's bearer token. Tokens are
// looked up by their SHA-256 hash, so no secret is ever compared.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	unauth := problem.New(http.StatusUnauthorized, "unauthenticated",
		"The request has no valid admin token",
		"sign in with 'sallyport admin login'")
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || len(tok) > 200 {
		return nil, unauth
	}
	t, err := s.store.APITokenByHash(r.Context(), hashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauth
	}
	if err != nil {
		return nil, err
	}
	if s.now().After(t.ExpiresAt) {
		return nil, problem.New(http.StatusUnauthorized, "token_expired", "The admin token expired", "sign in again with 'sallyport admin login'")
	}
	u, err := s.store.UserByID(r.Context(), t.TenantID, t.UserID)
	if err != nil {
		return nil, unauth
	}
	ten, err := s.store.TenantByID(r.Context(), t.TenantID)
	if err != nil {
		return nil, unauth
	}
	return &principal{User: u, Tenant: ten}, nil
}

// limiter rate-limits sign-in and registration attempts per client address.
type limiter struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	clients map[string]*rate.Limiter
	swept   time.Time
}

func newLimiter(perSec float64, burst int) *limiter {
	return &limiter{perSec: rate.Limit(perSec), burst: burst, clients: map[string]*rate.Limiter{}}
}

func (l *limiter) allow(r *http.Request) bool {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.swept) > time.Minute || len(l.clients) > 100000 {
		for k, v := range l.clients {
			if v.Tokens() >= float64(l.burst) {
				delete(l.clients, k)
			}
		}
		l.swept = time.Now()
	}
	lim, ok := l.clients[ip]
	if !ok {
		lim = rate.NewLimiter(l.perSec, l.burst)
		l.clients[ip] = lim
	}
	return lim.Allow()
}

var errRateLimited = problem.New(http.StatusTooManyRequests, "rate_limited",
	"Too many sign-in or registration attempts from this address",
	"wait a moment and try again")

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
