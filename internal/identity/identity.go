package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

// Policy is how long assertions live and how keys rotate.
type Policy struct {
	// Lifetime of an assertion (exp - iat); at most MaxLifetime.
	Lifetime time.Duration
	// PublishAhead: a new key is in the JWKS at least this long before it
	// signs, so that backends holding a cached JWKS see it first. At least
	// twice Lifetime.
	PublishAhead time.Duration
	// RetainAfter: a retired key stays in the JWKS at least this long
	// after its last signature. At least twice Lifetime.
	RetainAfter time.Duration
	// RotateEvery: a key signs for this long before its successor takes
	// over. More than PublishAhead.
	RotateEvery time.Duration
}

// MaxLifetime bounds an assertion's lifetime.
const MaxLifetime = 5 * time.Minute

// DefaultPolicy: assertions live 5 minutes; keys rotate every 30 days, a
// new key published a day before it signs and an old one kept a day after.
func DefaultPolicy() Policy {
	return Policy{Lifetime: MaxLifetime, PublishAhead: 24 * time.Hour, RetainAfter: 24 * time.Hour, RotateEvery: 30 * 24 * time.Hour}
}

// Validate checks the policy's rules.
func (p Policy) Validate() error {
	switch {
	case p.Lifetime <= 0 || p.Lifetime > MaxLifetime:
		return fmt.Errorf("identity: the assertion lifetime %s is not within (0, %s]", p.Lifetime, MaxLifetime)
	case p.PublishAhead < 2*p.Lifetime:
		return fmt.Errorf("identity: keys are published %s ahead, less than twice the assertion lifetime %s", p.PublishAhead, p.Lifetime)
	case p.RetainAfter < 2*p.Lifetime:
		return fmt.Errorf("identity: retired keys are kept %s, less than twice the assertion lifetime %s", p.RetainAfter, p.Lifetime)
	case p.RotateEvery <= p.PublishAhead:
		return fmt.Errorf("identity: keys rotate every %s, not more than they are published ahead (%s)", p.RotateEvery, p.PublishAhead)
	}
	return nil
}

// Config is how a Service runs.
type Config struct {
	// Store holds the keys; the cloud gives its store, which wraps the
	// private keys with the key-encryption key.
	Store store.Store
	// CloudName is the cloud's own DNS name: issuers are
	// https://CLOUDNAME/t/LABEL.
	CloudName string
	// Port is the cloud's public port when it is not 443 ("" when it is):
	// issuers and audiences then carry it, as the cloud's URLs do.
	Port string
	// Policy defaults to DefaultPolicy().
	Policy Policy
	// CacheFor is how long a tenant's keys are used from memory before the
	// store is read again (keys another instance made): 1 minute by
	// default, less than Policy.PublishAhead.
	CacheFor time.Duration
	// Events, when set, gets events 2940–2949.
	Events *eventlog.Log
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Service mints assertions and publishes the keys that verify them.
type Service struct {
	cfg Config

	mu     sync.Mutex // guards cache
	cache  map[string]*tenantKeys
	create sync.Mutex // held while a tenant's first key is made: one at a time in this process
}

// tenantKeys is a tenant's keys as last read from the store.
type tenantKeys struct {
	loaded time.Time
	keys   []*key
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.CloudName == "" {
		return nil, errors.New("identity: a store and the cloud's name are needed")
	}
	if cfg.Policy == (Policy{}) {
		cfg.Policy = DefaultPolicy()
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = time.Minute
	}
	if cfg.CacheFor >= cfg.Policy.PublishAhead {
		return nil, fmt.Errorf("identity: keys cached for %s, not less than they are published ahead (%s)", cfg.CacheFor, cfg.Policy.PublishAhead)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, cache: map[string]*tenantKeys{}}, nil
}

// Issuer is the issuer of a tenant's assertions: https://CLOUDNAME/t/LABEL.
func (s *Service) Issuer(label string) string { return s.origin(s.cfg.CloudName) + "/t/" + label }

// Audience is the aud of assertions for app: its external URL's origin,
// https://HOST.
func (s *Service) Audience(app App) string { return s.origin(app.ExternalHost) }

func (s *Service) origin(host string) string {
	if s.cfg.Port != "" && s.cfg.Port != "443" {
		return "https://" + host + ":" + s.cfg.Port
	}
	return "https://" + host
}

// JWKSURL is where a tenant's keys are published.
func (s *Service) JWKSURL(label string) string { return s.Issuer(label) + JWKSSuffix }

// App is the application an assertion is for.
type App struct {
	// ExternalHost is the application's host name; the audience is
	// https://HOST (see Service.Audience).
	ExternalHost string
}

// User is whom an assertion speaks of.
type User struct {
	ID     string // sub
	Name   string // name (the user name)
	Email  string // email
	Groups []string
}

// Minter mints assertions: the edge's gate (next release) calls it for
// each request of a signed-in user.
type Minter interface {
	Mint(ctx context.Context, tenant store.Tenant, app App, user User) (string, error)
}

var _ Minter = (*Service)(nil)

// Claims are the claims of a Sallyport-Assertion beside the registered
// ones (iss, aud, sub, iat, nbf, exp, jti).
type Claims struct {
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

// Mint signs an assertion of user for app with the tenant's current key,
// making the tenant's first key if it has none.
func (s *Service) Mint(ctx context.Context, tenant store.Tenant, app App, user User) (string, error) {
	if tenant.ID == "" || tenant.Label == "" || app.ExternalHost == "" || user.ID == "" {
		return "", errors.New("identity: an assertion needs a tenant with its label, an application host and a user id")
	}
	now := s.cfg.Now()
	keys, err := s.keys(ctx, tenant, now, true)
	if err != nil {
		return "", err
	}
	k := signerAt(keys, now)
	if k == nil {
		return "", fmt.Errorf("identity: tenant %s has no key that signs at %s", tenant.ID, now.UTC().Format(time.RFC3339))
	}
	var jti [16]byte
	rand.Read(jti[:])
	iat := now.Truncate(time.Second)
	groups := user.Groups
	if groups == nil {
		groups = []string{}
	}
	return jwt.Signed(k.signer).Claims(jwt.Claims{
		Issuer:    s.Issuer(tenant.Label),
		Audience:  jwt.Audience{s.Audience(app)},
		Subject:   user.ID,
		IssuedAt:  jwt.NewNumericDate(iat),
		NotBefore: jwt.NewNumericDate(iat),
		Expiry:    jwt.NewNumericDate(iat.Add(s.cfg.Policy.Lifetime)),
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
	}).Claims(Claims{Email: user.Email, Name: user.Name, Groups: groups}).Serialize()
}

// keys returns the tenant's keys, from memory while fresh. With create, a
// tenant without keys gets its first one (first need).
func (s *Service) keys(ctx context.Context, tenant store.Tenant, now time.Time, create bool) ([]*key, error) {
	s.mu.Lock()
	tk := s.cache[tenant.ID]
	s.mu.Unlock()
	if tk != nil && now.Sub(tk.loaded) < s.cfg.CacheFor && now.Sub(tk.loaded) >= 0 && len(tk.keys) > 0 {
		return tk.keys, nil
	}
	keys, err := s.load(ctx, tenant.ID, now)
	if err != nil || len(keys) > 0 || !create {
		return keys, err
	}
	return s.createFirst(ctx, tenant, now)
}

// load reads the tenant's keys from the store into the cache.
func (s *Service) load(ctx context.Context, tenantID string, now time.Time) ([]*key, error) {
	stored, err := s.cfg.Store.TenantSigningKeys(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("identity: reading the signing keys of tenant %s: %w", tenantID, err)
	}
	keys := make([]*key, 0, len(stored))
	for _, sk := range stored {
		k, err := parseKey(sk)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		keys = append(keys, k)
	}
	s.mu.Lock()
	s.cache[tenantID] = &tenantKeys{loaded: now, keys: keys}
	s.mu.Unlock()
	return keys, nil
}

// createFirst makes the tenant's first key, which signs at once: no
// backend can hold a JWKS of the tenant that lacks it, since the tenant
// had no key to publish. Another instance making it first is fine.
func (s *Service) createFirst(ctx context.Context, tenant store.Tenant, now time.Time) ([]*key, error) {
	s.create.Lock()
	defer s.create.Unlock()
	if keys, err := s.load(ctx, tenant.ID, now); err != nil || len(keys) > 0 {
		return keys, err
	}
	sk, err := newKey(tenant.ID, now, now)
	if err != nil {
		return nil, err
	}
	switch err := s.cfg.Store.AddTenantSigningKey(ctx, sk, ""); {
	case errors.Is(err, store.ErrConflict):
		// Another instance made it: use theirs.
	case err != nil:
		return nil, fmt.Errorf("identity: storing the first signing key of tenant %s: %w", tenant.ID, err)
	default:
		s.cfg.Events.Event(eventlog.SigningKeyCreated,
			fmt.Sprintf("Tenant %s got its first signing key %s for the identity assertions to its applications; its keys are published at %s", tenant.Domain, sk.KID, s.JWKSURL(tenant.Label)),
			"tenant", tenant.ID, "kid", sk.KID)
	}
	return s.load(ctx, tenant.ID, now)
}
