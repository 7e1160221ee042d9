package cloud

import (
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/problem"
)

// TestUserNameRules is issue 20 item 7: up to 64 characters before the @,
// Unicode letters allowed and compared after NFC and lower-casing, spaces
// refused as spaces, and each refusal names the rule it breaks.
func TestUserNameRules(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want: the stored name, or a part of the refusal
		ok       bool
	}{
		{"bob@contoso.com", "bob@contoso.com", true},
		{" Bob@Contoso.COM ", "bob@contoso.com", true},
		{"jörg@contoso.com", "jörg@contoso.com", true},
		{"JÖRG@contoso.com", "jörg@contoso.com", true},
		{"jo\u0308rg@contoso.com", "jörg@contoso.com", true}, // NFD: the same user
		{"first.last+tag_x-y@contoso.com", "first.last+tag_x-y@contoso.com", true},
		{strings.Repeat("a", 64) + "@contoso.com", strings.Repeat("a", 64) + "@contoso.com", true},
		{strings.Repeat("ü", 64) + "@contoso.com", strings.Repeat("ü", 64) + "@contoso.com", true}, // 64 characters, 128 bytes
		{strings.Repeat("a", 65) + "@contoso.com", "the part before the @ is longer than 64 characters", false},
		{strings.Repeat("a", 300) + "@contoso.com", "the part before the @ is longer than 64 characters", false},
		{"a@" + strings.Repeat("b.", 170) + "com", "longer than 320 characters", false},
		{"bob smith@contoso.com", "spaces are not allowed", false},
		{"bob\tsmith@contoso.com", "spaces are not allowed", false},
		{"bob@", "not of the form name@domain", false},
		{"@contoso.com", "not of the form name@domain", false},
		{"bob", "not of the form name@domain", false},
		{"bob/x@contoso.com", "may hold only letters, digits", false},
		{"bob@contoso", "not a DNS domain", false},
		{"bob@con_toso.com", "not a DNS domain", false},
	} {
		got, err := checkUserName("bad_user_name", tt.in, "")
		if !tt.ok {
			p, isP := problem.As(err)
			if !isP || p.Code != "bad_user_name" || !strings.Contains(p.Message, tt.want) || !strings.Contains(p.Step, "64 letters") {
				t.Errorf("checkUserName(%q) = %q, %v; want a bad_user_name refusal saying %q", truncate(tt.in, 40), got, err, tt.want)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkUserName(%q) = %q, %v; want %q", truncate(tt.in, 40), got, err, tt.want)
		}
		if _, _, ok := splitUser(got); !ok {
			t.Errorf("splitUser(%q) refuses a normalised name", got)
		}
	}
	if _, err := checkUserName("bad_user_name", "bob@fabrikam.com", "contoso.com"); err == nil || !strings.Contains(err.Error(), "not a user name of the domain contoso.com") {
		t.Errorf("user of another domain: %v", err)
	}
}

// TestGroupNameRules is issue 20 item 7: Unicode letters, digits, inner
// spaces and -_. counted in characters (not bytes), outer spaces refused
// rather than trimmed, each refusal naming its rule.
func TestGroupNameRules(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"Default", "Default", true},
		{"Zürich", "Zürich", true},
		{"Zu\u0308rich", "Zürich", true},
		{"Branch Office 2", "Branch Office 2", true},
		{"a.b_c-d", "a.b_c-d", true},
		{"東京", "東京", true},
		{strings.Repeat("ü", 64), strings.Repeat("ü", 64), true},
		{strings.Repeat("ü", 65), "longer than 64 characters", false},
		{" lead", "starts or ends with a space", false},
		{"trail ", "starts or ends with a space", false},
		{"", "it is empty", false},
		{"no/slash", "may hold only letters, digits, spaces", false},
		{"tab\there", "may hold only letters, digits, spaces", false},
		{"bad\xff", "not UTF-8", false},
	} {
		got, err := checkGroupName(tt.in)
		if !tt.ok {
			p, isP := problem.As(err)
			if !isP || p.Code != "bad_group_name" || !strings.Contains(p.Message, tt.want) || !strings.Contains(p.Step, "1 to 64") {
				t.Errorf("checkGroupName(%q) = %q, %v; want a bad_group_name refusal saying %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("checkGroupName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestNamesThroughAPI: the rules hold at the API, and group names are
// unique without regard to case ('default' beside 'Default').
func TestNamesThroughAPI(t *testing.T) {
	s := newTestServer(t)
	tok := login(t, s, "admin@contoso.com", testPassword)
	for _, tt := range []struct {
		method, path string
		body         any
		status       int
		want         string // in the body
	}{
		{"POST", "/users", api.CreateUserRequest{Name: "Jörg@contoso.com", Role: "user", Password: testPassword}, 201, `"name":"jörg@contoso.com"`},
		{"POST", "/users", api.CreateUserRequest{Name: "jo\u0308rg@contoso.com", Role: "user", Password: testPassword}, 409, "user_exists"},
		{"POST", "/users", api.CreateUserRequest{Name: "bob smith@contoso.com", Role: "user", Password: testPassword}, 400, "spaces are not allowed"},
		{"POST", "/users", api.CreateUserRequest{Name: strings.Repeat("a", 300) + "@contoso.com", Role: "user", Password: testPassword}, 400, "longer than 64 characters"},
		{"POST", "/groups", api.CreateGroupRequest{Name: "Zürich"}, 201, `"name":"Zürich"`},
		{"POST", "/groups", api.CreateGroupRequest{Name: "ZÜRICH"}, 409, "already exists in contoso.com as 'Zürich'"},
		{"POST", "/groups", api.CreateGroupRequest{Name: "default"}, 409, "already exists in contoso.com as 'Default'"},
		{"POST", "/groups", api.CreateGroupRequest{Name: " lead"}, 400, "starts or ends with a space"},
		{"PATCH", "/groups/Zürich", api.UpdateGroupRequest{Name: "DEFAULT"}, 409, "group_exists"},
		{"PATCH", "/groups/zürich", api.UpdateGroupRequest{Name: "ZÜRICH"}, 200, `"name":"ZÜRICH"`},
	} {
		rec, _ := call(t, s, tt.method, tt.path, tok, tt.body)
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s %s %+v = %d %s; want %d with %q", tt.method, tt.path, tt.body, rec.Code, rec.Body.String(), tt.status, tt.want)
		}
	}
	// A user signs in with any case and either Unicode form of the name.
	login(t, s, "JO\u0308RG@contoso.com", testPassword)
}
