package cloud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
	"github.com/sallyport/sallyport/internal/store"
	"github.com/sallyport/sallyport/internal/tenancy"
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

// comparePassword checks a password against an argon2id hash, in a
// hashing slot of the sign-in guard.
func (s *Server) comparePassword(ctx context.Context, src, password, hash string) (bool, error) {
	ok := false
	err := s.signin.hash(ctx, src, func() {
		m, err := argon2id.ComparePasswordAndHash(password, hash)
		ok = err == nil && m
	})
	return ok, err
}

var errBadCredentials = problem.New(http.StatusUnauthorized, "bad_credentials",
	"check both and try again; the user name is the full name@domain of your organisation, for example admin@contoso.com", "The user name or password is wrong")

// checkPassword authenticates a user by name and password for a request
// from source src (sourceOf). An unknown user, a domain no tenant owns and
// a wrong password get the same answer at the same cost (a full hash), so
// that neither users nor tenants can be enumerated; all three count as
// failures for the source and the name.
func (s *Server) checkPassword(ctx context.Context, src, name, password string) (store.User, store.Tenant, error) {
	name, err := tenancy.CheckUserName("bad_user_name", name, "")
	if err != nil {
		return store.User{}, store.Tenant{}, err
	}
	if err := s.signin.checkAccount(src, name); err != nil {
		return store.User{}, store.Tenant{}, err
	}
	u, err := s.store.UserByName(ctx, name)
	hash := u.PasswordHash
	if errors.Is(err, store.ErrNotFound) {
		hash = dummyHash()
	} else if err != nil {
		return store.User{}, store.Tenant{}, err
	}
	ok, herr := s.comparePassword(ctx, src, password, hash)
	if herr != nil {
		return store.User{}, store.Tenant{}, herr
	}
	if err != nil || !ok {
		s.signin.failed(src, name)
		return store.User{}, store.Tenant{}, errBadCredentials
	}
	t, err := s.store.TenantByID(ctx, u.TenantID)
	if err != nil {
		return store.User{}, store.Tenant{}, err
	}
	s.signin.succeeded(name)
	return u, t, nil
}

// userDisabled refuses a disabled user, once the password is known right.
func userDisabled(u store.User, t store.Tenant) error {
	return problem.Newf(http.StatusForbidden, "user_disabled", "ask a Global Administrator of "+t.Domain+" to enable it ('sallyport admin user enable "+u.Name+"')",
		"The user %s is disabled", u.Name)
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
		"sign in with 'sallyport admin login'", "The request has no valid admin token")
	if p, ok, err := s.consolePrincipal(r); ok {
		return p, err
	}
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
		return nil, problem.New(http.StatusUnauthorized, "token_expired", "sign in again with 'sallyport admin login'", "The admin token expired")
	}
	u, err := s.store.UserByID(r.Context(), t.TenantID, t.UserID)
	if err != nil {
		return nil, unauth
	}
	ten, err := s.store.TenantByID(r.Context(), t.TenantID)
	if err != nil {
		return nil, unauth
	}
	if u.Disabled {
		return nil, userDisabled(u, ten)
	}
	return &principal{User: u, Tenant: ten}, nil
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	src := sourceOf(r.RemoteAddr)
	if err := s.signin.admit(src); err != nil {
		s.writeError(w, r, err)
		return
	}
	var in api.LoginRequest
	if err := decodeBody(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, t, err := s.checkPassword(r.Context(), src, in.User, in.Password)
	if err == nil && u.Disabled {
		err = userDisabled(u, t)
	}
	if err != nil {
		s.log.Info("sign-in failed", "user", tenancy.Truncate(in.User, 80), "address", r.RemoteAddr)
		s.writeError(w, r, err)
		return
	}
	tok, hash := newToken()
	now := s.now().UTC()
	at := store.APIToken{ID: tenancy.NewID("k"), UserID: u.ID, TenantID: u.TenantID, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(TokenLifetime)}
	if err := s.store.CreateAPIToken(r.Context(), at); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.store.DeleteExpiredAPITokens(r.Context(), now)
	writeJSON(w, http.StatusOK, api.LoginResponse{Token: tok, ExpiresAt: at.ExpiresAt, User: u.Name, Tenant: t.Domain, Role: string(u.Role)})
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, api.Me{User: p.User.Name, Tenant: p.Tenant.Domain, TenantID: p.Tenant.ID, Role: string(p.User.Role),
		DefaultHostSuffix: "-" + p.Tenant.Label + "." + s.settings.Name})
	return nil
}
