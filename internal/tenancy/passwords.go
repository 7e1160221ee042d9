package tenancy

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/alexedwards/argon2id"

	"github.com/sallyport/sallyport/internal/problem"
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// CheckPassword enforces the password policy.
func CheckPassword(p string) error {
	if len(p) < MinPasswordLength {
		return problem.Newf(400, "weak_password", fmt.Sprintf("choose a password of at least %d characters", MinPasswordLength),
			"The password is too short (%d characters)", len(p))
	}
	if len(p) > 1024 {
		return problem.New(400, "weak_password", "choose a shorter one", "The password is longer than 1024 characters")
	}
	return nil
}

// GeneratePassword returns a random 24-character password.
func GeneratePassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// HashPassword makes an argon2id hash (for the cloud's offline commands,
// which run one at a time).
func HashPassword(ctx context.Context, p string) (hash string, err error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return argon2id.CreateHash(p, argon2id.DefaultParams)
}
