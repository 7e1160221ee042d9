package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/datadir"
	"github.com/sallyport/sallyport/internal/pki"
)

// lockedBuffer is a bytes.Buffer safe for the server's concurrent logging.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newTokenServer makes a cloud (contoso.com and fabrikam.com) on an
// injected clock, logging into the returned buffer.
func newTokenServer(t *testing.T) (*Server, *clock, *lockedBuffer) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "cloud")
	ctx := context.Background()
	if _, err := datadir.Init(ctx, datadir.InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com", AdminPassword: testPassword}); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Now: clk.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := datadir.AddTenant(ctx, s.store, "fabrikam.com", "", "admin@fabrikam.com", testPassword); err != nil {
		t.Fatal(err)
	}
	return s, clk, logs
}

// newCSR returns a fresh certificate signing request, PEM.
func newCSR(t *testing.T) string {
	t.Helper()
	_, csr, err := pki.NewKeyAndCSR("ignored")
	if err != nil {
		t.Fatal(err)
	}
	return string(csr)
}

// createToken creates a registration token as the holder of admin; it
// must succeed.
func createToken(t *testing.T, s *Server, admin string, in api.CreateRegistrationTokenRequest) api.CreateRegistrationTokenResponse {
	t.Helper()
	rec, eb := call(t, s, "POST", "/tokens", admin, in)
	if rec.Code != 201 {
		t.Fatalf("create token %+v: %d %s", in, rec.Code, eb.Error.Message)
	}
	var out api.CreateRegistrationTokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// registerToken registers a connector with a registration token (and the
// other fields of extra, if given); it returns the answer.
func registerToken(t *testing.T, s *Server, token string, extra ...api.RegisterRequest) (api.RegisterResponse, int, api.ErrorBody) {
	t.Helper()
	in := api.RegisterRequest{CSR: newCSR(t), Hostname: "site-1", Version: "test"}
	if len(extra) > 0 {
		x := extra[0]
		in.Group, in.User, in.Password, in.PreviousConnectorID = x.Group, x.User, x.Password, x.PreviousConnectorID
		if x.CSR != "" {
			in.CSR = x.CSR
		}
	}
	in.Token = token
	rec, eb := call(t, s, "POST", "/connectors/register", "", in)
	var out api.RegisterResponse
	if rec.Code == 201 {
		json.Unmarshal(rec.Body.Bytes(), &out)
	}
	return out, rec.Code, eb
}

// listTokens lists the registration tokens as admin sees them.
func listTokens(t *testing.T, s *Server, admin string) (map[string]api.RegistrationToken, string) {
	t.Helper()
	rec, eb := call(t, s, "GET", "/tokens", admin, nil)
	if rec.Code != 200 {
		t.Fatalf("list tokens: %d %s", rec.Code, eb.Error.Message)
	}
	var ts []api.RegistrationToken
	if err := json.Unmarshal(rec.Body.Bytes(), &ts); err != nil {
		t.Fatal(err)
	}
	m := map[string]api.RegistrationToken{}
	for _, x := range ts {
		m[x.ID] = x
	}
	return m, rec.Body.String()
}

func wantRefused(t *testing.T, what string, code int, eb api.ErrorBody, status int, errCode string, msg ...string) {
	t.Helper()
	if code != status || eb.Error.Code != errCode {
		t.Fatalf("%s: %d %q (%s), want %d %q", what, code, eb.Error.Code, eb.Error.Message, status, errCode)
	}
	for _, m := range msg {
		if !strings.Contains(eb.Error.Message, m) {
			t.Errorf("%s: message %q does not contain %q", what, eb.Error.Message, m)
		}
	}
	if eb.Error.Step == "" || !strings.Contains(eb.Error.Message, eb.Error.Step) {
		t.Errorf("%s: message %q does not carry a step (%q)", what, eb.Error.Message, eb.Error.Step)
	}
}

// TestRegistrationToken: create, list without the secret, register with
// no password into the token's group, the use count, expiry on the
// injected clock, and that the store keeps only the hash.
func TestRegistrationToken(t *testing.T) {
	s, clk, logs := newTokenServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	if rec, eb := call(t, s, "POST", "/groups", admin, api.CreateGroupRequest{Name: "Branch"}); rec.Code != 201 {
		t.Fatalf("create group: %d %s", rec.Code, eb.Error.Message)
	}
	created := clk.Now()

	// Defaults: one use, 24 hours.
	one := createToken(t, s, admin, api.CreateRegistrationTokenRequest{Group: "Branch"})
	if !strings.HasPrefix(one.Token, "spr_") || len(one.Token) != 4+43 {
		t.Errorf("token %q is not spr_ and 43 base64url characters", one.Token)
	}
	if !strings.HasPrefix(one.ID, "r_") || one.Group != "Branch" || one.CreatedBy != "admin@contoso.com" || one.MaxUses != 1 ||
		one.Uses != 0 || one.State != "active" || !one.ExpiresAt.Equal(created.Add(24*time.Hour)) || !one.CreatedAt.Equal(created) {
		t.Errorf("created token = %+v", one.RegistrationToken)
	}

	listed, body := listTokens(t, s, admin)
	if got := listed[one.ID]; got != one.RegistrationToken {
		t.Errorf("listed %+v, want %+v", got, one.RegistrationToken)
	}
	if strings.Contains(body, one.Token) || strings.Contains(body, hashToken(one.Token)) || strings.Contains(body, `"token"`) {
		t.Errorf("the list shows the token or its hash: %s", body)
	}

	reg, code, eb := registerToken(t, s, one.Token)
	if code != 201 || reg.Tenant != "contoso.com" || reg.Group != "Branch" || reg.ConnectorID == "" {
		t.Fatalf("register with the token: %d %+v %s", code, reg, eb.Error.Message)
	}
	if log := logs.String(); !strings.Contains(log, "connector="+reg.ConnectorID) || !strings.Contains(log, "by=admin@contoso.com") ||
		!strings.Contains(log, "token="+one.ID) || !strings.Contains(log, `via="registration token"`) {
		t.Errorf("the registration log does not say which token (and whose) registered %s:\n%s", reg.ConnectorID, log)
	}
	rec, _ := call(t, s, "GET", "/connectors/"+reg.ConnectorID, admin, nil)
	var conn api.Connector
	json.Unmarshal(rec.Body.Bytes(), &conn)
	if rec.Code != 200 || conn.Group != "Branch" {
		t.Errorf("the registered connector: %d %+v", rec.Code, conn)
	}

	_, code, eb = registerToken(t, s, one.Token)
	wantRefused(t, "second use of a one-time token", code, eb, 401, "registration_token_used_up",
		"the registration token "+one.ID+" is used up", "it allowed 1 registration")
	listed, _ = listTokens(t, s, admin)
	if got := listed[one.ID]; got.Uses != 1 || got.State != "used_up" {
		t.Errorf("after its use: %+v", got)
	}

	// Three uses within one hour.
	three := createToken(t, s, admin, api.CreateRegistrationTokenRequest{ExpiresInSeconds: ptr(int64(3600)), MaxUses: ptr(3)})
	if three.Group != "Default" || three.MaxUses != 3 || !three.ExpiresAt.Equal(created.Add(time.Hour)) {
		t.Errorf("created token = %+v", three.RegistrationToken)
	}
	for i := range 2 {
		if reg, code, eb := registerToken(t, s, three.Token); code != 201 || reg.Group != "Default" {
			t.Fatalf("use %d of 3: %d %s", i+1, code, eb.Error.Message)
		}
	}
	clk.Advance(time.Hour - time.Second)
	admin = login(t, s, "admin@contoso.com", testPassword)
	if _, code, eb := registerToken(t, s, three.Token); code != 201 {
		t.Fatalf("use 3 of 3, a second before expiry: %d %s", code, eb.Error.Message)
	}
	_, code, eb = registerToken(t, s, three.Token)
	wantRefused(t, "fourth use", code, eb, 401, "registration_token_used_up", "it allowed 3 registrations and all 3 have been made")

	unlimited := createToken(t, s, admin, api.CreateRegistrationTokenRequest{ExpiresInSeconds: ptr(int64(60)), MaxUses: ptr(0)})
	for i := range 4 {
		if _, code, eb := registerToken(t, s, unlimited.Token); code != 201 {
			t.Fatalf("use %d of an unlimited token: %d %s", i+1, code, eb.Error.Message)
		}
	}
	clk.Advance(time.Minute)
	_, code, eb = registerToken(t, s, unlimited.Token)
	wantRefused(t, "use at expiry", code, eb, 401, "registration_token_expired",
		"the registration token "+unlimited.ID+" expired on "+unlimited.ExpiresAt.UTC().Format(time.RFC3339))
	admin = login(t, s, "admin@contoso.com", testPassword)
	listed, _ = listTokens(t, s, admin)
	if got := listed[unlimited.ID]; got.State != "expired" || got.Uses != 4 || got.MaxUses != 0 {
		t.Errorf("expired unlimited token listed as %+v", got)
	}
	if got := listed[three.ID]; got.State != "used_up" || got.Uses != 3 {
		t.Errorf("used-up token listed as %+v", got)
	}

	// Only the hash is stored.
	files, _ := filepath.Glob(filepath.Join(s.cfg.DataDir, "*"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, tok := range []string{one.Token, three.Token, unlimited.Token} {
			if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte(strings.TrimPrefix(tok, "spr_"))) {
				t.Errorf("%s contains a registration token", filepath.Base(f))
			}
		}
	}
	if !strings.Contains(strings.Join(files, " "), datadir.StoreFile) {
		t.Errorf("the store file %s is not in %v", datadir.StoreFile, files)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRegistrationTokenRevokeAndRoles: revocation (and that another
// tenant cannot revoke), roles, and that a token registers in its own
// tenant only.
func TestRegistrationTokenRevokeAndRoles(t *testing.T) {
	s, clk, _ := newTokenServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	fabrikam := login(t, s, "admin@fabrikam.com", testPassword)
	ops, bob := addOpsAndBob(t, s, admin)

	tok := createToken(t, s, ops, api.CreateRegistrationTokenRequest{MaxUses: ptr(5)})
	if tok.CreatedBy != "ops@contoso.com" {
		t.Errorf("created_by = %q", tok.CreatedBy)
	}
	for _, c := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"user cannot create", "POST", "/tokens", bob, api.CreateRegistrationTokenRequest{}, 403, "forbidden"},
		{"user cannot list", "GET", "/tokens", bob, nil, 403, "forbidden"},
		{"user cannot revoke", "DELETE", "/tokens/" + tok.ID, bob, nil, 403, "forbidden"},
		{"no sign-in", "GET", "/tokens", "", nil, 401, "unauthenticated"},
		{"other tenant cannot revoke", "DELETE", "/tokens/" + tok.ID, fabrikam, nil, 404, "no_token"},
		{"unknown token id", "DELETE", "/tokens/r_nope", admin, nil, 404, "no_token"},
	} {
		rec, eb := call(t, s, c.method, c.path, c.token, c.body)
		if rec.Code != c.status || eb.Error.Code != c.code {
			t.Errorf("%s: %d %q (%s), want %d %q", c.name, rec.Code, eb.Error.Code, eb.Error.Message, c.status, c.code)
		}
	}
	if m, _ := listTokens(t, s, fabrikam); len(m) != 0 {
		t.Errorf("fabrikam lists contoso's tokens: %+v", m)
	}

	// Still usable after the refused revocations; registers in contoso only.
	if reg, code, eb := registerToken(t, s, tok.Token); code != 201 || reg.Tenant != "contoso.com" {
		t.Fatalf("register: %d %+v %s", code, reg, eb.Error.Message)
	}
	fab := createToken(t, s, fabrikam, api.CreateRegistrationTokenRequest{})
	if reg, code, eb := registerToken(t, s, fab.Token); code != 201 || reg.Tenant != "fabrikam.com" {
		t.Fatalf("register with fabrikam's token: %d %+v %s", code, reg, eb.Error.Message)
	}

	clk.Advance(time.Minute)
	revokedAt := clk.Now()
	rec, eb := call(t, s, "DELETE", "/tokens/"+tok.ID, admin, nil)
	var revoked api.RegistrationToken
	json.Unmarshal(rec.Body.Bytes(), &revoked)
	if rec.Code != 200 || revoked.State != "revoked" || revoked.RevokedBy != "admin@contoso.com" || !revoked.RevokedAt.Equal(revokedAt) || revoked.Uses != 1 {
		t.Fatalf("revoke: %d %+v %s", rec.Code, revoked, eb.Error.Message)
	}
	clk.Advance(time.Minute)
	rec, _ = call(t, s, "DELETE", "/tokens/"+tok.ID, ops, nil)
	var again api.RegistrationToken
	json.Unmarshal(rec.Body.Bytes(), &again)
	if rec.Code != 200 || again != revoked {
		t.Errorf("second revocation: %d %+v, want the first kept %+v", rec.Code, again, revoked)
	}
	_, code, eb := registerToken(t, s, tok.Token)
	wantRefused(t, "revoked token", code, eb, 401, "registration_token_revoked",
		"the registration token "+tok.ID+" was revoked on "+revokedAt.Format(time.RFC3339)+" by admin@contoso.com")
}

// TestRegistrationTokenRefusals: wrong group, unknown and malformed
// tokens, and creation limits. A refused registration costs no use.
func TestRegistrationTokenRefusals(t *testing.T) {
	s, _, _ := newTokenServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	call(t, s, "POST", "/groups", admin, api.CreateGroupRequest{Name: "Branch"})
	tok := createToken(t, s, admin, api.CreateRegistrationTokenRequest{Group: "Branch"})

	_, code, eb := registerToken(t, s, tok.Token, api.RegisterRequest{Group: "Default"})
	wantRefused(t, "wrong group", code, eb, 403, "registration_token_group",
		"the registration token "+tok.ID+" is for the connector group 'Branch', not 'Default'", "without --group")
	_, code, eb = registerToken(t, s, tok.Token, api.RegisterRequest{CSR: "not a CSR"})
	wantRefused(t, "bad CSR", code, eb, 400, "bad_csr")
	_, code, eb = registerToken(t, s, tok.Token, api.RegisterRequest{User: "admin@contoso.com", Password: testPassword})
	wantRefused(t, "token and password", code, eb, 400, "bad_request", "both a registration token and a user name or password")
	_, code, eb = registerToken(t, s, "spr_"+strings.Repeat("A", 43))
	wantRefused(t, "unknown token", code, eb, 401, "registration_token_unknown", "not known to this cloud")
	_, code, eb = registerToken(t, s, "hello")
	wantRefused(t, "malformed token", code, eb, 401, "registration_token_unknown", "not known to this cloud")
	_, code, eb = registerToken(t, s, admin)
	wantRefused(t, "admin API token", code, eb, 401, "registration_token_unknown", "an admin sign-in token")

	if m, _ := listTokens(t, s, admin); m[tok.ID].Uses != 0 {
		t.Fatalf("refused registrations used the token: %+v", m[tok.ID])
	}
	if reg, code, eb := registerToken(t, s, "  "+tok.Token+"\n", api.RegisterRequest{Group: "Branch"}); code != 201 || reg.Group != "Branch" {
		t.Fatalf("register with the token's own group: %d %+v %s", code, reg, eb.Error.Message)
	}

	for _, c := range []struct {
		name   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"31 days", api.CreateRegistrationTokenRequest{ExpiresInSeconds: ptr(int64(31 * 86400))}, 400, "bad_token_lifetime", "at most 30 days, not 31 days"},
		{"59 seconds", api.CreateRegistrationTokenRequest{ExpiresInSeconds: ptr(int64(59))}, 400, "bad_token_lifetime", "at least 1 minute, not 59 seconds"},
		{"negative lifetime", api.CreateRegistrationTokenRequest{ExpiresInSeconds: ptr(int64(-3600))}, 400, "bad_token_lifetime", "not -1 hour"},
		{"negative uses", api.CreateRegistrationTokenRequest{MaxUses: ptr(-1)}, 400, "bad_token_uses", "-1 is not a number of registrations"},
		{"too many uses", api.CreateRegistrationTokenRequest{MaxUses: ptr(10001)}, 400, "bad_token_uses", "give 1 to 10000 registrations, or 0"},
		{"unknown group", api.CreateRegistrationTokenRequest{Group: "Nope"}, 404, "no_group", "There is no connector group 'Nope' in contoso.com"},
		{"unknown field", []byte(`{"expires":"24h"}`), 400, "bad_request", "not valid JSON"},
	} {
		rec, eb := call(t, s, "POST", "/tokens", admin, c.body)
		if rec.Code != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.msg) {
			t.Errorf("%s: %d %q (%s), want %d %q containing %q", c.name, rec.Code, eb.Error.Code, eb.Error.Message, c.status, c.code, c.msg)
		}
	}
	month := createToken(t, s, admin, api.CreateRegistrationTokenRequest{ExpiresInSeconds: ptr(int64(30 * 86400)), MaxUses: ptr(10000)})
	if d := month.ExpiresAt.Sub(month.CreatedAt); d != 30*24*time.Hour || month.MaxUses != 10000 {
		t.Errorf("30-day token: lifetime %s, max uses %d", d, month.MaxUses)
	}
}

// TestRegistrationTokenGroupAndIdentity: a token only takes over the
// identity of a connector of its own group, and deleting the group
// deletes its tokens (without being refused because of them).
func TestRegistrationTokenGroupAndIdentity(t *testing.T) {
	s, _, _ := newTokenServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	call(t, s, "POST", "/groups", admin, api.CreateGroupRequest{Name: "Branch"})
	call(t, s, "POST", "/groups", admin, api.CreateGroupRequest{Name: "Lab"})
	inDefault, code, eb := registerToken(t, s, "", api.RegisterRequest{User: "admin@contoso.com", Password: testPassword})
	if code != 201 {
		t.Fatalf("register with a password: %d %s", code, eb.Error.Message)
	}
	branch := createToken(t, s, admin, api.CreateRegistrationTokenRequest{Group: "Branch", MaxUses: ptr(0)})
	inBranch, code, eb := registerToken(t, s, branch.Token)
	if code != 201 || inBranch.Reused {
		t.Fatalf("register in Branch: %d %+v %s", code, inBranch, eb.Error.Message)
	}

	again, code, eb := registerToken(t, s, branch.Token, api.RegisterRequest{PreviousConnectorID: inBranch.ConnectorID})
	if code != 201 || !again.Reused || again.ConnectorID != inBranch.ConnectorID {
		t.Errorf("re-registration in its own group: %d %+v %s", code, again, eb.Error.Message)
	}
	other, code, eb := registerToken(t, s, branch.Token, api.RegisterRequest{PreviousConnectorID: inDefault.ConnectorID})
	if code != 201 || other.Reused || other.ConnectorID == inDefault.ConnectorID || other.Group != "Branch" {
		t.Errorf("a Branch token naming a Default connector: %d %+v %s", code, other, eb.Error.Message)
	}
	if rec, _ := call(t, s, "GET", "/connectors/"+inDefault.ConnectorID, admin, nil); rec.Code != 200 {
		t.Errorf("the Default connector named by a Branch token was replaced: %d", rec.Code)
	}

	lab := createToken(t, s, admin, api.CreateRegistrationTokenRequest{Group: "Lab"})
	if rec, eb := call(t, s, "DELETE", "/groups/Lab", admin, nil); rec.Code != 204 {
		t.Fatalf("delete a group with a token: %d %s", rec.Code, eb.Error.Message)
	}
	_, code, eb = registerToken(t, s, lab.Token)
	wantRefused(t, "token of a deleted group", code, eb, 401, "registration_token_unknown")
	if m, _ := listTokens(t, s, admin); len(m) != 1 {
		t.Errorf("tokens after deleting Lab: %+v", m)
	}
}

// TestRegistrationTokenRace: ten registrations at once with a one-time
// token: exactly one gets a certificate.
func TestRegistrationTokenRace(t *testing.T) {
	s, _, _ := newTokenServer(t)
	admin := login(t, s, "admin@contoso.com", testPassword)
	tok := createToken(t, s, admin, api.CreateRegistrationTokenRequest{})
	csrs := make([]string, 10)
	for i := range csrs {
		csrs[i] = newCSR(t)
	}
	codes := make([]string, len(csrs))
	var wg sync.WaitGroup
	for i := range csrs {
		wg.Go(func() {
			rec, eb := call(t, s, "POST", "/connectors/register", "", api.RegisterRequest{Token: tok.Token, CSR: csrs[i], Hostname: fmt.Sprint("h", i)})
			codes[i] = fmt.Sprint(rec.Code, " ", eb.Error.Code)
		})
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case "201 ":
			ok++
		case "401 registration_token_used_up":
		default:
			t.Errorf("unexpected answer %q", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d registrations succeeded with a one-time token: %v", ok, codes)
	}
	rec, _ := call(t, s, "GET", "/connectors", admin, nil)
	var cs []api.Connector
	json.Unmarshal(rec.Body.Bytes(), &cs)
	if len(cs) != 1 {
		t.Errorf("%d connectors recorded, want 1", len(cs))
	}
}
