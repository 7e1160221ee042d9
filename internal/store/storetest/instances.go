package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// testInstances checks the instances' heartbeat rows: an upsert that
// replaces every field, the aliveSince filter (inclusive), the order by
// id, deletion, and times kept to the nanosecond in UTC.
func testInstances(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got := get(t, func() ([]store.Instance, error) { return s.ListInstances(ctx, time.Time{}) }); got == nil || len(got) != 0 {
		t.Fatalf("ListInstances on an empty store = %#v, want an empty list", got)
	}
	b := store.Instance{ID: "inst-b", Advertise: "10.0.0.2:443", StartedAt: at(0), HeartbeatAt: at(1)}
	a := store.Instance{ID: "inst-a", Advertise: "", StartedAt: at(0), HeartbeatAt: at(5)}
	must(t, s.Heartbeat(ctx, b))
	must(t, s.Heartbeat(ctx, a))
	equal(t, "all", get(t, func() ([]store.Instance, error) { return s.ListInstances(ctx, time.Time{}) }), []store.Instance{a, b})

	// A beat replaces the row (a restarted instance may also change its
	// address and start time).
	paris := time.FixedZone("CET", 3600)
	b2 := store.Instance{ID: b.ID, Advertise: "cloud-2.example:8443", StartedAt: at(2).In(paris), HeartbeatAt: at(6).In(paris)}
	must(t, s.Heartbeat(ctx, b2))
	want := store.Instance{ID: b.ID, Advertise: b2.Advertise, StartedAt: at(2), HeartbeatAt: at(6)}
	equal(t, "after a beat", get(t, func() ([]store.Instance, error) { return s.ListInstances(ctx, time.Time{}) }), []store.Instance{a, want})

	tests := []struct {
		since time.Time
		want  []store.Instance
	}{
		{at(5), []store.Instance{a, want}}, // inclusive
		{at(5).Add(time.Nanosecond), []store.Instance{want}},
		{at(6), []store.Instance{want}},
		{at(7), []store.Instance{}},
	}
	for _, tc := range tests {
		equal(t, "alive since "+tc.since.String(), get(t, func() ([]store.Instance, error) { return s.ListInstances(ctx, tc.since) }), tc.want)
	}

	must(t, s.DeleteInstance(ctx, a.ID))
	equal(t, "after delete", get(t, func() ([]store.Instance, error) { return s.ListInstances(ctx, time.Time{}) }), []store.Instance{want})
	if err := s.DeleteInstance(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteInstance of a deleted instance = %v, want ErrNotFound", err)
	}
}
