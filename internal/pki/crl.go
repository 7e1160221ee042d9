package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ReasonSuperseded is RFC 5280's CRL reason code "superseded": the
// certificate was replaced by a new one (and its key discarded).
const ReasonSuperseded = 4

// CreateCRL signs a certificate revocation list (X.509 v2, DER) with the
// CA: CRL number number (it must grow with every list the CA publishes),
// valid from thisUpdate until nextUpdate, listing revoked. The CA
// certificate must allow CRL signing (NewCA's do) and carry a subject key
// id (the list's authority key id).
func (ca *CA) CreateCRL(number *big.Int, thisUpdate, nextUpdate time.Time, revoked []x509.RevocationListEntry) ([]byte, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("the CA is not loaded")
	}
	if number == nil || number.Sign() <= 0 {
		return nil, errors.New("the CRL number must be positive")
	}
	if !nextUpdate.After(thisUpdate) {
		return nil, errors.New("the CRL's next update must come after its this update")
	}
	der, err := x509.CreateRevocationList(nil, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                thisUpdate.UTC(),
		NextUpdate:                nextUpdate.UTC(),
		RevokedCertificateEntries: revoked,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the CRL: %w", err)
	}
	return der, nil
}
