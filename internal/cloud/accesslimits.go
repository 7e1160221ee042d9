package cloud

import "github.com/sallyport/sallyport/internal/problem"

// AccessLimits are private access's limits per user and per tenant
// (cloud serve --access-stream-rate, --access-stream-burst,
// --access-max-streams-per-user, --access-max-streams-per-tenant); a zero
// field is its default.
type AccessLimits struct {
	Rate      float64 // streams a user may open per second (default 20)
	Burst     int     // streams a user may open at once before Rate applies (default twice Rate, at least 1)
	PerUser   int     // streams open at once per user (default 256)
	PerTenant int     // streams open at once per tenant (default 4 096)
}

// withDefaults fills the zero fields.
func (l AccessLimits) withDefaults() AccessLimits {
	if l.Rate <= 0 {
		l.Rate = accessRate
	}
	if l.Burst <= 0 {
		l.Burst = max(1, int(2*l.Rate)) // accessBurst with the default rate
	}
	if l.PerUser <= 0 {
		l.PerUser = accessUserStreams
	}
	if l.PerTenant <= 0 {
		l.PerTenant = accessTenantStreams
	}
	return l
}

func (l AccessLimits) validate() error {
	if l.Rate < 0 || l.Burst < 0 || l.PerUser < 0 || l.PerTenant < 0 {
		return problem.New(400, "bad_config", "give a positive number, or 0 for the default", "A private access limit (--access-stream-rate, --access-stream-burst, --access-max-streams-per-user or --access-max-streams-per-tenant) is negative")
	}
	return nil
}
