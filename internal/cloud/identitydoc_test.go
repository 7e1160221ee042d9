package cloud

// The backend of docs/identity.md: the lines between the markers are the
// doc's code block, less its package clause (TestIdentityDocBackend checks
// that the doc holds them verbatim, and runs them against a real cloud).

// doc:begin
import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertedUser is what Sallyport asserts about the signed-in user.
type AssertedUser struct {
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

// AssertionKeys verifies assertions with the issuer's keys (its JWKS),
// fetched again once 5 minutes old.
type AssertionKeys struct {
	Issuer  string // https://CLOUDNAME/t/LABEL
	Client  *http.Client
	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
}

func (k *AssertionKeys) keys() (*jose.JSONWebKeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set == nil || time.Since(k.fetched) > 5*time.Minute {
		resp, err := k.Client.Get(k.Issuer + "/.well-known/jwks.json")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		set := new(jose.JSONWebKeySet)
		if err := json.NewDecoder(resp.Body).Decode(set); err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("JWKS of %s: %s %v", k.Issuer, resp.Status, err)
		}
		k.set, k.fetched = set, time.Now()
	}
	return k.set, nil
}

// Verify checks the request's Sallyport-Assertion: signature, issuer,
// audience (this application's own https://HOST) and lifetime.
func (k *AssertionKeys) Verify(r *http.Request, audience string) (*AssertedUser, error) {
	set, err := k.keys()
	if err != nil {
		return nil, err
	}
	tok, err := jwt.ParseSigned(r.Header.Get("Sallyport-Assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var claims jwt.Claims
	var user AssertedUser
	if err := tok.Claims(set, &claims, &user); err != nil {
		return nil, err
	}
	expected := jwt.Expected{Issuer: k.Issuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()}
	if err := claims.Validate(expected); err != nil {
		return nil, err
	}
	return &user, nil
}

func main() {
	keys := &AssertionKeys{Issuer: "https://sallyport.example.com/t/contoso", Client: http.DefaultClient}
	http.ListenAndServe(":8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := keys.Verify(r, "https://wiki-contoso.sallyport.example.com")
		if err != nil {
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "Hello %s <%s>, member of %v\n", user.Name, user.Email, user.Groups)
	}))
}

// doc:end
