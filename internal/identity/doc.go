// Package identity owns what a backend needs to trust the cloud's word
// about a user: each tenant's ES256 signing keys (kept in the Store,
// wrapped there by the caller's key-encryption key), the signed
// Sallyport-Assertion (a JWT: iss https://CLOUDNAME/t/LABEL, aud the
// application's https://HOST, sub, email, name, groups, iat, nbf, exp, jti),
// the tenant's JWKS and OpenID discovery document, and the rotation of the
// keys on an injected clock: a new key is published before it signs, and a
// retired one stays published after its last use (docs/identity.md).
//
// It must not import the cloud, the edge or the connector: the cloud wires
// it (maintain loop, routes at the cloud's own name), and the edge's gate
// will call a Minter.
package identity
