package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sallyport/sallyport/internal/store"
)

// Alg is the one signature algorithm of assertions and keys.
const Alg = "ES256"

// key is a tenant's signing key, parsed.
type key struct {
	kid       string
	priv      *ecdsa.PrivateKey
	signer    jose.Signer
	created   time.Time
	signFrom  time.Time
	signUntil time.Time // zero: no successor yet
}

// maySignAt reports whether k may sign at now (of those that may, the one
// that started last does: see signerAt).
func (k *key) maySignAt(now time.Time) bool {
	return !now.Before(k.signFrom) && (k.signUntil.IsZero() || now.Before(k.signUntil))
}

// publishedAt reports whether k is in the JWKS at now: from its creation
// (in practice: whenever it is in the store) until retain after its last
// use.
func (k *key) publishedAt(now time.Time, retain time.Duration) bool {
	return k.signUntil.IsZero() || now.Before(k.signUntil.Add(retain))
}

// newKey makes a P-256 key for tenantID, created at now, signing from
// signFrom.
func newKey(tenantID string, now, signFrom time.Time) (store.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{
		TenantID: tenantID, KID: kid,
		KeyPEM:    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		CreatedAt: now, SignFrom: signFrom,
	}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of a public key: the key id.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// parseKey turns a stored key into a signing key, checking that it is a
// P-256 key whose thumbprint is its id.
func parseKey(sk store.SigningKey) (*key, error) {
	block, _ := pem.Decode(sk.KeyPEM)
	if block == nil {
		return nil, fmt.Errorf("the signing key %s of tenant %s is not PEM", sk.KID, sk.TenantID)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the signing key %s of tenant %s does not parse: %w", sk.KID, sk.TenantID, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the signing key %s of tenant %s is not a P-256 key", sk.KID, sk.TenantID)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	if kid != sk.KID {
		return nil, fmt.Errorf("the signing key %s of tenant %s has the thumbprint %s", sk.KID, sk.TenantID, kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: Alg}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &key{kid: kid, priv: priv, signer: signer, created: sk.CreatedAt, signFrom: sk.SignFrom, signUntil: sk.SignUntil}, nil
}

// signerAt returns the key that signs at now: of those that may, the one
// that started last; nil when there is no key. A clock set back before
// every key's start (a tenant's first key was made moments ago) gets the
// earliest: every stored key is published, so any verifies.
func signerAt(keys []*key, now time.Time) *key {
	var best, earliest *key
	for _, k := range keys {
		if k.maySignAt(now) && (best == nil || k.signFrom.After(best.signFrom)) {
			best = k
		}
		if earliest == nil || k.signFrom.Before(earliest.signFrom) {
			earliest = k
		}
	}
	if best == nil {
		return earliest
	}
	return best
}

// jwks is the JSON Web Key Set of the keys published at now.
func jwks(keys []*key, now time.Time, retain time.Duration) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		if k.publishedAt(now, retain) {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: Alg, Use: "sig"})
		}
	}
	return set
}
