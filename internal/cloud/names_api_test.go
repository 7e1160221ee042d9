package cloud

import (
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
)

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
