package cloud

import (
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestAccessLimitsConfigured: cloud serve's --access-* flags replace the
// defaults: the burst, the streams per user and per tenant.
func TestAccessLimitsConfigured(t *testing.T) {
	tests := []struct {
		name      string
		cfg       AccessLimits
		users     int // users of one tenant opening streams at one instant
		admitted  int // streams admitted in all
		refusedAs string
	}{
		{"defaults: the burst", AccessLimits{}, 1, accessBurst, "faster than 20 a second"},
		{"a larger burst, the streams per user", AccessLimits{Rate: 1000, Burst: 2000, PerUser: 1500}, 1, 1500, "1500 streams open"},
		{"burst twice the rate", AccessLimits{Rate: 5}, 1, 10, "faster than 5 a second"},
		{"the streams per tenant", AccessLimits{Rate: 100, PerTenant: 300}, 2, 300, "300 streams open, the most one organisation may"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.validate(); err != nil {
				t.Fatal(err)
			}
			l := accessLimits{cfg: tt.cfg.withDefaults()}
			now := time.Unix(1e9, 0)
			admitted, last := 0, ""
			for i := range 5000 {
				user := []string{"u1", "u2"}[i%tt.users]
				if ar := l.admit("t1", "contoso.com", user, now); ar != nil {
					if ar.Code != tunnel.AccessRateLimited {
						t.Fatalf("refused as %s", ar.Code)
					}
					if last == "" {
						last = ar.Message // the first limit hit
					}
					continue
				}
				admitted++
			}
			if admitted != tt.admitted || !strings.Contains(last, tt.refusedAs) {
				t.Errorf("admitted %d (want %d), first refusal %q (want %q)", admitted, tt.admitted, last, tt.refusedAs)
			}
		})
	}
	if err := (AccessLimits{PerUser: -1}).validate(); err == nil || !strings.Contains(err.Error(), "--access-max-streams-per-user") {
		t.Errorf("a negative limit: %v", err)
	}
}
