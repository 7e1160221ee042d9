package cloud

import (
	"strings"
	"testing"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/store"
)

// TestMyAppsNetwork: My Apps lists the network applications the user is
// assigned to, with the commands that reach them (no links), and the
// network sign-in once.
func TestMyAppsNetwork(t *testing.T) {
	env := startAccess(t) // ssh (echo.corp:22, …) and lonely (10.9.0.1:2222, …) assigned to alice
	ctx := t.Context()
	tok := login(t, env.srv, "admin@contoso.com", testPassword)
	for _, a := range []api.CreateAppRequest{
		{Name: "dns", Type: "udp", InternalAddresses: []string{"dns.corp:53"}, Description: "The internal resolver"},
		{Name: "range", Type: "tcp", InternalAddresses: []string{"10.2.0.0/16:5432", "*.build.corp:20-30"}},
		{Name: "hidden", Type: "tcp", InternalAddresses: []string{"hidden.corp:22"}}, // nobody assigned
	} {
		if rec, eb := call(t, env.srv, "POST", "/apps", tok, a); rec.Code != 201 {
			t.Fatalf("create %s: %d %s", a.Name, rec.Code, eb.Error.Message)
		}
		if a.Name == "hidden" {
			continue
		}
		app, err := env.srv.store.AppByName(ctx, env.tenant.ID, a.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.srv.store.Assign(ctx, store.Assignment{TenantID: env.tenant.ID, AppID: app.ID, UserID: env.alice.ID, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	_, alice := env.browser(t).homeSignIn("alice@contoso.com", testPassword)
	_, bob := env.browser(t).homeSignIn("bob@contoso.com", testPassword)
	tests := []struct {
		name      string
		page      string
		want, not []string
	}{
		{"the sign-in, once", alice, []string{`id="net-apps"`, "<code>sallyport access login https://sallyport.localhost/ --user alice@contoso.com</code>"}, nil},
		{"tcp with one address and port 22", alice, []string{`id="netapp-ssh"`, "tcp: echo.corp:22, refused.corp:22",
			"<code>sallyport access tcp ssh</code>", "<code>ssh -o ProxyCommand=&#39;sallyport access stdio %h %p&#39; echo.corp</code>"}, nil},
		{"udp", alice, []string{`id="netapp-dns"`, "The internal resolver", "udp: dns.corp:53", "<code>sallyport access udp dns</code>"}, []string{"access stdio %h %p&#39; dns.corp"}},
		{"ranges only: --dest, a wildcard's ssh line", alice, []string{`id="netapp-range"`, "<code>sallyport access tcp range --dest HOST:PORT</code>",
			"<code>ssh -o ProxyCommand=&#39;sallyport access stdio %h %p&#39; HOST.build.corp</code>"}, nil},
		{"not a link, not unassigned, not another tenant's", alice, nil, []string{`id="netapp-hidden"`, `id="netapp-fab"`, `href="sallyport`, `id="no-apps"`}},
		{"nothing assigned", bob, []string{`id="no-apps"`}, []string{`id="net-apps"`, "access login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(tt.page, w) {
					t.Errorf("My Apps lacks %s:\n%s", w, tt.page)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(tt.page, n) {
					t.Errorf("My Apps shows %s", n)
				}
			}
		})
	}
}
