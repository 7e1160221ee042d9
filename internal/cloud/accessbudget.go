package cloud

import (
	"github.com/sallyport/sallyport/internal/tunnel"
	"github.com/sallyport/sallyport/internal/tunnel/mux"
)

// What the raw streams of private access may hold at the cloud beyond
// their first window (16 KiB each): bytes a connector sent that the
// user's client has not read yet. A client that opens its 256 streams,
// reads fast until their windows have grown and then stops reading would
// otherwise leave up to 4 MiB per stream, 1 GiB per user, in the cloud's
// memory. Per user, within the tenant's, within the cloud's one budget
// for relay windows (shared with web applications' requests).
const (
	accessUserWindowBudget   = 16 << 20
	accessTenantWindowBudget = 128 << 20
)

// accessBudgets holds a window budget per user and per tenant while they
// have streams open (their counts are accessLimits'; its mutex guards
// these maps too).
type accessBudgets struct {
	parent  *mux.WindowBudget // the cloud's, Server.relayBudget; nil: unbounded
	users   map[string]*mux.WindowBudget
	tenants map[string]*mux.WindowBudget
}

// take makes sure userID of tenantID has a budget (l.mu held).
func (b *accessBudgets) take(tenantID, userID string) {
	if b.users == nil {
		b.users, b.tenants = map[string]*mux.WindowBudget{}, map[string]*mux.WindowBudget{}
	}
	if b.users[userID] != nil {
		return
	}
	tb := b.tenants[tenantID]
	if tb == nil {
		tb = tunnel.NewWindowBudget(accessTenantWindowBudget, b.parent)
		b.tenants[tenantID] = tb
	}
	b.users[userID] = tunnel.NewWindowBudget(accessUserWindowBudget, tb)
}

// release forgets the budgets of a user, of a tenant with no stream open
// any more (l.mu held, after the counts went down). A closed stream gave
// back what its window had taken, so nothing is lost.
func (b *accessBudgets) release(tenantID, userID string, users, tenants map[string]int) {
	if users[userID] <= 0 {
		delete(b.users, userID)
	}
	if tenants[tenantID] <= 0 {
		delete(b.tenants, tenantID)
	}
}

// budget is the window budget of userID's streams (nil when the user has
// no stream admitted: unbounded, which cannot happen after admit).
func (l *accessLimits) budget(userID string) *mux.WindowBudget {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.budgets.users[userID]
}
