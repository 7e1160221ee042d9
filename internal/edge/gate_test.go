package edge

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestStripOwnCookies(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, nil},
		{"only the app's", []string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{"only ours", []string{"__Host-sallyport=spc_x"}, nil},
		{"mixed", []string{"a=1; __Host-sallyport=spc_x; b=2"}, []string{"a=1; b=2"}},
		{"several headers", []string{"__Host-sallyport-csrf=y", "c=3"}, []string{"c=3"}},
		{"a look-alike value stays", []string{"a=__Host-sallyport"}, []string{"a=__Host-sallyport"}},
		{"spaces", []string{"  __Host-sallyport=v ;x=1"}, []string{"x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.in != nil {
				h["Cookie"] = append([]string(nil), tt.in...)
			}
			stripOwnCookies(h)
			if got := h["Cookie"]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Cookie = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIdentityHeaders(t *testing.T) {
	tests := []struct {
		name string
		id   Identity
		keep bool
		want http.Header
	}{
		{"all", Identity{User: "alice@contoso.com", Email: "alice@contoso.com", Groups: []string{"Sales", "HR"}, Assertion: "j.w.t"}, false,
			http.Header{HeaderUser: {"alice@contoso.com"}, HeaderEmail: {"alice@contoso.com"}, HeaderGroups: {"Sales,HR"}, HeaderAssertion: {"j.w.t"}, "Authorization": {"Basic x"}}},
		{"no email, no groups", Identity{User: "bob@contoso.com"}, false,
			http.Header{HeaderUser: {"bob@contoso.com"}, "Authorization": {"Basic x"}}},
		{"bearer removed", Identity{User: "bob@contoso.com", Bearer: true}, false,
			http.Header{HeaderUser: {"bob@contoso.com"}}},
		{"bearer kept", Identity{User: "bob@contoso.com", Bearer: true}, true,
			http.Header{HeaderUser: {"bob@contoso.com"}, "Authorization": {"Basic x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Basic x"}}
			identityHeaders(h, &tt.id, tt.keep)
			if !reflect.DeepEqual(h, tt.want) {
				t.Fatalf("headers = %v, want %v", h, tt.want)
			}
		})
	}
}

type gateFunc func(w http.ResponseWriter, r *http.Request, app *App, rid string) (*Identity, string)

func (f gateFunc) Admit(w http.ResponseWriter, r *http.Request, app *App, rid string) (*Identity, string) {
	return f(w, r, app, rid)
}

// TestGate: a pre-authenticated application's requests reach the
// dispatcher only when the gate admits them, with the identity headers
// and without the client's copies or Sallyport's cookie.
func TestGate(t *testing.T) {
	app := *testApp
	app.PreAuth = true
	var reached []http.Header
	d := dispatchFunc(func(_ *App, r *http.Request) (*http.Response, error) {
		reached = append(reached, r.Header.Clone())
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	})
	gate := gateFunc(func(w http.ResponseWriter, r *http.Request, _ *App, _ string) (*Identity, string) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			return nil, "signin_required"
		}
		return &Identity{User: "alice@contoso.com", Groups: []string{"Sales"}, Assertion: "a.b.c", Bearer: true}, ""
	})
	tests := []struct {
		name      string
		gate      Gate
		auth      string
		wantCode  int
		wantReach bool
	}{
		{"no gate: refused", nil, "Bearer good", http.StatusServiceUnavailable, false},
		{"anonymous: refused", gate, "", http.StatusUnauthorized, false},
		{"wrong token: refused", gate, "Bearer bad", http.StatusUnauthorized, false},
		{"admitted", gate, "Bearer good", http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = nil
			h := New(Config{Routes: routes{app.ExternalHost: &app}, Dispatcher: d, Gate: tt.gate})
			r := httptest.NewRequest("GET", "https://"+app.ExternalHost+"/x", nil)
			r.Header.Set("Authorization", tt.auth)
			r.Header.Set("X-Sallyport-User", "mallory@contoso.com")
			r.Header["X_Sallyport_Groups"] = []string{"Admins"}
			r.Header.Set("Cookie", "__Host-sallyport=spc_secret; app=1")
			w := httptest.NewRecorder()
			var o Outcome
			h.Serve(w, r, &o)
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d", w.Code, tt.wantCode)
			}
			if (len(reached) > 0) != tt.wantReach {
				t.Fatalf("reached the dispatcher: %v, want %v", len(reached) > 0, tt.wantReach)
			}
			if !tt.wantReach {
				if o.Error == "" {
					t.Fatal("no outcome code for a refused request")
				}
				return
			}
			got := reached[0]
			want := map[string]string{HeaderUser: "alice@contoso.com", HeaderGroups: "Sales", HeaderAssertion: "a.b.c", "Cookie": "app=1", "Authorization": ""}
			for k, v := range want {
				if g := got.Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			if _, ok := got["X_Sallyport_Groups"]; ok {
				t.Error("the client's X_Sallyport_Groups reached the backend")
			}
		})
	}
}
