package cloud

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/pki"
)

// TestRegisterHomeTenantOnly: a connector is always registered in the
// registering user's home tenant; asking for another is refused by name.
func TestRegisterHomeTenantOnly(t *testing.T) {
	s := newTestServer(t)
	_, csr, err := pki.NewKeyAndCSR("x")
	if err != nil {
		t.Fatal(err)
	}
	req := api.RegisterRequest{User: "admin@fabrikam.com", Password: testPassword, CSR: string(csr), Tenant: "contoso.com"}
	rec, eb := call(t, s, "POST", "/connectors/register", "", req)
	if rec.Code != 403 || eb.Error.Code != "not_home_tenant" ||
		!strings.Contains(eb.Error.Message, "admin@fabrikam.com belongs to fabrikam.com, not contoso.com") {
		t.Fatalf("got %d %s: %s", rec.Code, eb.Error.Code, eb.Error.Message)
	}
	req.Tenant = "FabriKam.com"
	rec, eb = call(t, s, "POST", "/connectors/register", "", req)
	var out api.RegisterResponse
	json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != 201 || out.Tenant != "fabrikam.com" {
		t.Fatalf("home tenant: %d %s %+v", rec.Code, eb.Error.Message, out)
	}
}
