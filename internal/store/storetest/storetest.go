// Package storetest owns the conformance suite every store.Store
// implementation must pass: round-trips of every field, the ErrConflict and
// ErrNotFound contracts, tenant isolation, revocation on connector deletion,
// token expiry, domain claims (verified by one tenant at most, even by
// racing callers), the directory (user groups, memberships, assignments,
// and their deletion with the users, groups and applications they name),
// registration tokens (never used more often than they allow, even by
// racing callers), tenant signing keys (rotated once, even by racing
// callers), sign-in (user profiles and second factors, recovery codes and
// grants used once even by racing callers, tenant settings, identity
// providers, sessions ended with those made from them and with their
// user), the instances' heartbeat rows, the ACME client's storage (objects
// by prefix, locks held, extended, taken over once expired, and taken once
// by racing owners), zero and non-UTC times, and concurrent use.
//
// An implementation's test calls Run with a function opening a new, empty
// store.
package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/store"
)

// Run runs the conformance suite against the stores open returns. open is
// called once per subtest and must return a new, empty store; Run closes it
// when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Tenants", testTenants},
		{"TenantAtomicity", testTenantAtomicity},
		{"Users", testUsers},
		{"APITokens", testAPITokens},
		{"DeleteExpiredAPITokens", testDeleteExpiredAPITokens},
		{"Groups", testGroups},
		{"GroupLifecycle", testGroupLifecycle},
		{"InactiveConnectors", testInactiveConnectors},
		{"ConnectorCert", testConnectorCert},
		{"Connectors", testConnectors},
		{"DeleteConnector", testDeleteConnector},
		{"Apps", testApps},
		{"UpdateApp", testUpdateApp},
		{"NetworkApps", testNetworkApps},
		{"Conflicts", testConflicts},
		{"NotFound", testNotFound},
		{"TenantIsolation", testTenantIsolation},
		{"ForeignGroup", testForeignGroup},
		{"ZeroTimes", testZeroTimes},
		{"TimesInUTC", testTimesInUTC},
		{"EmptyLists", testEmptyLists},
		{"Concurrent", testConcurrent},
		{"RegistrationTokens", testRegistrationTokens},
		{"UseRegistrationToken", testUseRegistrationToken},
		{"RevokeRegistrationToken", testRevokeRegistrationToken},
		{"RegistrationTokenGroupDeleted", testRegistrationTokenGroupDeleted},
		{"RegistrationTokenRace", testRegistrationTokenRace},
		{"Releases", testReleases},
		{"UpdateTurns", testUpdateTurns},
		{"UpdateTurnRace", testUpdateTurnRace},
		{"UpdateHalts", testUpdateHalts},
		{"Domains", testDomains},
		{"DomainVerifiedOnce", testDomainVerifiedOnce},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyRace", testSigningKeyRace},
		{"UserGroups", testUserGroups},
		{"Memberships", testMemberships},
		{"Assignments", testAssignments},
		{"DirectoryCascades", testDirectoryCascades},
		{"DirectoryTenantIsolation", testDirectoryTenantIsolation},
		{"UserProfile", testUserProfile},
		{"UserMFA", testUserMFA},
		{"RecoveryCodeRace", testRecoveryCodeRace},
		{"TenantSettings", testTenantSettings},
		{"IdentityProviders", testIdentityProviders},
		{"Sessions", testSessions},
		{"DeleteSession", testDeleteSession},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"Grants", testGrants},
		{"TakeGrant", testTakeGrant},
		{"TakeGrantRace", testTakeGrantRace},
		{"UserCodeRace", testUserCodeRace},
		{"DeleteExpiredGrants", testDeleteExpiredGrants},
		{"SignInCascades", testSignInCascades},
		{"DirectoryListings", testDirectoryListings},
		{"Instances", testInstances},
		{"ACMEObjects", testACMEObjects},
		{"ACMELocks", testACMELocks},
		{"ACMELockRace", testACMELockRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 is the base of every fixture time: UTC, with nanoseconds, so a
// round-trip that truncates or shifts it is caught.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// at returns t0 plus n minutes.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

// tenantFixture is a tenant with everything CreateTenant makes for it.
type tenantFixture struct {
	Tenant store.Tenant
	CA     store.TenantCA
	Group  store.Group
	Admin  store.User
}

// newTenant builds (without storing) the fixture of tenant label.com.
func newTenant(label string) tenantFixture {
	id := "tenant-" + label
	return tenantFixture{
		Tenant: store.Tenant{ID: id, Domain: label + ".com", Label: label, CreatedAt: at(0)},
		CA: store.TenantCA{
			TenantID: id,
			CertPEM:  []byte("-----BEGIN CERTIFICATE-----\n" + label + "\n-----END CERTIFICATE-----\n"),
			KeyPEM:   []byte("-----BEGIN PRIVATE KEY-----\n" + label + "\n-----END PRIVATE KEY-----\n"),
		},
		Group: store.Group{ID: "group-default-" + label, TenantID: id, Name: "Default", CreatedAt: at(1)},
		Admin: store.User{
			ID: "user-admin-" + label, TenantID: id, Name: "admin@" + label + ".com",
			Role: store.RoleGlobalAdmin, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$" + label, CreatedAt: at(2),
		},
	}
}

// createTenant stores the fixture of tenant label.com.
func createTenant(t *testing.T, s store.Store, label string) tenantFixture {
	t.Helper()
	f := newTenant(label)
	must(t, s.CreateTenant(t.Context(), f.Tenant, f.CA, f.Group, f.Admin))
	return f
}

// newConnector builds a connector of f's Default group.
func newConnector(f tenantFixture, name string) store.Connector {
	return store.Connector{
		ID: "conn-" + name, TenantID: f.Tenant.ID, GroupID: f.Group.ID,
		Hostname: name + ".corp.local", Version: "1.2.3",
		CertSerial: "0a1b2c" + name, CertThumbprint: "ABCDEF0123" + name,
		CertNotAfter: at(60 * 24 * 365), CreatedAt: at(10), LastSeenAt: at(11), LastAddress: "192.0.2.7:51234",
	}
}

// newApp builds an application of f's Default group, with an edge
// certificate.
func newApp(f tenantFixture, name string) store.Application {
	return store.Application{
		ID: "app-" + f.Tenant.Label + "-" + name, TenantID: f.Tenant.ID, Name: name, GroupID: f.Group.ID, Type: store.AppHTTP,
		ExternalHost: name + "-" + f.Tenant.Label + ".sallyport.example",
		InternalURL:  "http://" + name + ".corp.local:8080/", Timeout: "default", PreAuth: "passthrough",
		CertPEM: []byte("cert of " + name), KeyPEM: []byte("key of " + name), Affinity: name == "web", BackendProxy: "http://proxy.corp:3128",
		DetailedErrors: name == "wiki", Description: "The " + name + " of the team — ünïcode kept",
		CreatedAt: at(20), UpdatedAt: at(21),
	}
}

// newNetworkApp builds a network application (tcp or udp) of f's Default
// group: internal addresses, no external host, no internal URL.
func newNetworkApp(f tenantFixture, name, typ string, addrs ...string) store.Application {
	return store.Application{
		ID: "app-" + f.Tenant.Label + "-" + name, TenantID: f.Tenant.ID, Name: name, GroupID: f.Group.ID, Type: typ,
		InternalAddresses: addrs, Timeout: "default", PreAuth: "sallyport", CreatedAt: at(22), UpdatedAt: at(23),
	}
}

// must fails the test on a non-nil error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// get calls fn, fails the test on error and returns the value.
func get[T any](t *testing.T, fn func() (T, error)) T {
	t.Helper()
	v, err := fn()
	must(t, err)
	return v
}

// equal fails the test unless got and want are deeply equal.
func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// errCase is one call expected to fail with a sentinel error.
type errCase struct {
	name string
	call func() error
}

// runErrCases runs each case as a subtest expecting target.
func runErrCases(t *testing.T, target error, cases []errCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.call(), target)
		})
	}
}

// errOf drops the value of a getter's result, keeping the error.
func errOf[T any](_ T, err error) error { return err }
