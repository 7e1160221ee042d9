package cloud

import (
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/tunnel"
)

// TestAccessBudgets: each user with a stream open has a window budget of
// its own within its tenant's, within the cloud's; they go with the
// user's last stream.
func TestAccessBudgets(t *testing.T) {
	total := tunnel.NewWindowBudget(tunnel.TotalWindowBudget, nil)
	l := accessLimits{cfg: AccessLimits{Rate: 1000, Burst: 1000}}
	l.budgets.parent = total
	now := time.Unix(1e9, 0)
	for _, s := range []struct{ tenant, user string }{{"t1", "u1"}, {"t1", "u1"}, {"t1", "u2"}, {"t2", "u3"}} {
		if ar := l.admit(s.tenant, s.tenant+".example", s.user, now); ar != nil {
			t.Fatalf("%s: %v", s.user, ar)
		}
	}
	u1, u2, u3 := l.budget("u1"), l.budget("u2"), l.budget("u3")
	switch {
	case u1 == nil || u2 == nil || u3 == nil:
		t.Fatal("a user with streams open has no budget")
	case u1 == u2 || u1 == u3:
		t.Fatal("two users share a budget")
	case u1.Left() != accessUserWindowBudget:
		t.Fatalf("a user's budget is %d, want %d", u1.Left(), accessUserWindowBudget)
	case l.budgets.tenants["t1"] == nil || l.budgets.tenants["t1"] == l.budgets.tenants["t2"]:
		t.Fatal("tenants do not have a budget each")
	}
	l.release("t1", "u1")
	if l.budget("u1") != u1 {
		t.Fatal("u1's budget went while a stream was still open")
	}
	for _, s := range []struct{ tenant, user string }{{"t1", "u1"}, {"t1", "u2"}, {"t2", "u3"}} {
		l.release(s.tenant, s.user)
	}
	if l.budget("u1") != nil || len(l.budgets.users) != 0 || len(l.budgets.tenants) != 0 {
		t.Fatalf("budgets left after every stream ended: %d users, %d tenants", len(l.budgets.users), len(l.budgets.tenants))
	}
	if total.Left() != tunnel.TotalWindowBudget {
		t.Fatalf("the cloud's budget is %d after every stream ended, want %d", total.Left(), tunnel.TotalWindowBudget)
	}
}
