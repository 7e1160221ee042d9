package pki

import (
	"crypto/x509"
	"math/big"
	"slices"
	"testing"
	"time"
)

// TestCreateCRL: the list parses, its signature checks against the CA (and
// not against another CA), it lists exactly the given serials with their
// reasons, and its number and dates are the ones given.
func TestCreateCRL(t *testing.T) {
	t.Parallel()
	ca, other := testCA(t), testCA(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		number  int64
		serials []int64
	}{
		{"empty", 1, nil},
		{"one superseded", 2, []int64{0x1234}},
		{"several", 3, []int64{7, 0xdeadbeef, 1 << 40}},
	}
	prev := big.NewInt(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []x509.RevocationListEntry
			for _, s := range tt.serials {
				entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.Add(-time.Hour), ReasonCode: ReasonSuperseded})
			}
			der, err := ca.CreateCRL(big.NewInt(tt.number), now, now.Add(7*24*time.Hour), entries)
			if err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatalf("the CRL does not parse: %v", err)
			}
			if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("the CRL's signature does not check against its CA: %v", err)
			}
			if err := crl.CheckSignatureFrom(other.Cert); err == nil {
				t.Error("the CRL's signature checks against another CA")
			}
			if crl.Number.Cmp(big.NewInt(tt.number)) != 0 || crl.Number.Cmp(prev) <= 0 {
				t.Errorf("CRL number %v, want %d (after %v)", crl.Number, tt.number, prev)
			}
			prev = crl.Number
			if !crl.ThisUpdate.Equal(now) || !crl.NextUpdate.Equal(now.Add(7*24*time.Hour)) {
				t.Errorf("thisUpdate %v nextUpdate %v", crl.ThisUpdate, crl.NextUpdate)
			}
			var got []int64
			for _, e := range crl.RevokedCertificateEntries {
				got = append(got, e.SerialNumber.Int64())
				if e.ReasonCode != ReasonSuperseded {
					t.Errorf("serial %v has reason %d, want superseded", e.SerialNumber, e.ReasonCode)
				}
			}
			if !slices.Equal(got, tt.serials) {
				t.Errorf("listed serials %v, want %v", got, tt.serials)
			}
		})
	}
}

func TestCreateCRLRefuses(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	now := time.Now()
	tests := []struct {
		name       string
		ca         *CA
		number     *big.Int
		thisUpdate time.Time
		nextUpdate time.Time
	}{
		{"no CA", nil, big.NewInt(1), now, now.Add(time.Hour)},
		{"no number", ca, nil, now, now.Add(time.Hour)},
		{"zero number", ca, big.NewInt(0), now, now.Add(time.Hour)},
		{"next update before this update", ca, big.NewInt(1), now, now.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.ca.CreateCRL(tt.number, tt.thisUpdate, tt.nextUpdate, nil); err == nil {
				t.Error("CreateCRL succeeded")
			}
		})
	}
}

// TestIssueServerDistributionPoint: the option puts the CRL's URL into the
// certificate; without it there is none.
func TestIssueServerDistributionPoint(t *testing.T) {
	t.Parallel()
	ca := testCA(t)
	const url = "https://sallyport.test:8443/pki/cloud-ca.crl"
	c, err := ca.IssueServer([]string{"sallyport.test"}, time.Hour, DistributionPoint(url))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Leaf.CRLDistributionPoints, []string{url}) {
		t.Errorf("CRLDistributionPoints = %v, want [%s]", c.Leaf.CRLDistributionPoints, url)
	}
	plain, err := ca.IssueServer([]string{"sallyport.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Leaf.CRLDistributionPoints) != 0 {
		t.Errorf("CRLDistributionPoints without the option = %v", plain.Leaf.CRLDistributionPoints)
	}
}
