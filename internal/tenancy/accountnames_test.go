package tenancy

import (
	"strings"
	"testing"

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
		got, err := CheckUserName("bad_user_name", tt.in, "")
		if !tt.ok {
			p, isP := problem.As(err)
			if !isP || p.Code != "bad_user_name" || !strings.Contains(p.Message, tt.want) || !strings.Contains(p.Step, "64 letters") {
				t.Errorf("CheckUserName(%q) = %q, %v; want a bad_user_name refusal saying %q", Truncate(tt.in, 40), got, err, tt.want)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CheckUserName(%q) = %q, %v; want %q", Truncate(tt.in, 40), got, err, tt.want)
		}
		if _, _, ok := SplitUser(got); !ok {
			t.Errorf("SplitUser(%q) refuses a normalised name", got)
		}
	}
	if _, err := CheckUserName("bad_user_name", "bob@fabrikam.com", "contoso.com"); err == nil || !strings.Contains(err.Error(), "not a user name of the domain contoso.com") {
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
		// User groups follow the same rules, refused with their own code
		// and naming their kind.
		for _, check := range []struct {
			name, code, what string
			fn               func(string) (string, error)
		}{
			{"CheckGroupName", "bad_group_name", "is not a valid group name", CheckGroupName},
			{"CheckUserGroupName", "bad_user_group_name", "is not a valid user group name", CheckUserGroupName},
		} {
			got, err := check.fn(tt.in)
			if !tt.ok {
				p, isP := problem.As(err)
				if !isP || p.Code != check.code || !strings.Contains(p.Message, tt.want) || !strings.Contains(p.Message, check.what) || !strings.Contains(p.Step, "1 to 64") {
					t.Errorf("%s(%q) = %q, %v; want a %s refusal saying %q", check.name, tt.in, got, err, check.code, tt.want)
				}
				continue
			}
			if err != nil || got != tt.want {
				t.Errorf("%s(%q) = %q, %v; want %q", check.name, tt.in, got, err, tt.want)
			}
		}
	}
}
