package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sallyport/sallyport/internal/api"
)

// tokenFile is the file the ready register command reads the token from
// (the CLI's admin token create prints the same).
const tokenFile = "sallyport-token"

// tokenRow is a registration token as the list shows it.
type tokenRow struct {
	api.RegistrationToken
	UsesText  string // "0/1", "3/unlimited"
	StateText string // "active", "used up"
}

func tokenRowOf(t api.RegistrationToken) tokenRow {
	row := tokenRow{RegistrationToken: t, StateText: strings.ReplaceAll(t.State, "_", " ")}
	if t.MaxUses == 0 {
		row.UsesText = fmt.Sprintf("%d/unlimited", t.Uses)
	} else {
		row.UsesText = fmt.Sprintf("%d/%d", t.Uses, t.MaxUses)
	}
	return row
}

// tokensView is the data of the tokens page: the list and the create
// form with what was typed and the API's (or the form's) refusal.
type tokensView struct {
	Tokens   []tokenRow
	Groups   []api.Group
	Group    string
	Lifetime string
	Uses     string
	Err      string
	MaxUses  int
}

// tokensPage lists the registration tokens (GET /api/v1/tokens; never the
// tokens themselves), with the form to create one.
func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, u User) error {
	return c.showTokens(w, r, u, http.StatusOK, tokensView{Group: "Default", Lifetime: "24h", Uses: "1"})
}

func (c *Console) showTokens(w http.ResponseWriter, r *http.Request, u User, status int, v tokensView) error {
	var ts []api.RegistrationToken
	if err := c.Call(r, u, http.MethodGet, "/tokens", nil, &ts); err != nil {
		return err
	}
	for _, t := range ts {
		v.Tokens = append(v.Tokens, tokenRowOf(t))
	}
	if err := c.Call(r, u, http.MethodGet, "/groups", nil, &v.Groups); err != nil {
		return err
	}
	v.MaxUses = api.MaxTokenMaxUses
	c.render(w, r, u, status, "tokens", "tokens", v)
	return nil
}

// tokenCreatedView is the page that shows a new token, once.
type tokenCreatedView struct {
	T             api.CreateRegistrationTokenResponse
	Lifetime      string // "24 hours"
	Registrations string // "1 registration"
	FileCommand   string // how to write the token file, mode 0600
	Command       string // the ready register command
}

// createToken creates a registration token (POST /api/v1/tokens) and
// shows it on the answer itself — no redirect, so it is shown once and
// never kept (the page is Cache-Control: no-store) — with the ready
// command to register a connector with it.
func (c *Console) createToken(w http.ResponseWriter, r *http.Request, u User) error {
	v := tokensView{Group: formValue(r, "group"), Lifetime: formValue(r, "lifetime"), Uses: formValue(r, "uses")}
	var in api.CreateRegistrationTokenRequest
	in.Group = v.Group
	if v.Lifetime != "" {
		sec, err := parseLifetime(v.Lifetime)
		if err != nil {
			v.Err = err.Error()
			return c.showTokens(w, r, u, http.StatusBadRequest, v)
		}
		in.ExpiresInSeconds = &sec
	}
	if v.Uses != "" {
		n, err := strconv.Atoi(v.Uses)
		if err != nil {
			v.Err = fmt.Sprintf("%q is not a number of uses: give a whole number from 1 to %d, or 0 for any number until the token expires.", truncate(v.Uses, 20), api.MaxTokenMaxUses)
			return c.showTokens(w, r, u, http.StatusBadRequest, v)
		}
		in.MaxUses = &n
	}
	var t api.CreateRegistrationTokenResponse
	err := c.Call(r, u, http.MethodPost, "/tokens", in, &t)
	var ae *APIError
	if errors.As(err, &ae) {
		v.Err = ae.Message
		return c.showTokens(w, r, u, ae.Status, v)
	}
	if err != nil {
		return err
	}
	cmd := "sallyport connector register --cloud " + c.cfg.Origin
	if c.cfg.CAFingerprint != "" {
		cmd += " --ca-fingerprint " + c.cfg.CAFingerprint
	}
	cmd += " --token-file " + tokenFile
	c.render(w, r, u, http.StatusOK, "token-created", "tokens", tokenCreatedView{T: t, Lifetime: api.LifetimeText(t.ExpiresAt.Sub(t.CreatedAt)),
		Registrations: api.RegistrationsText(t.MaxUses), FileCommand: "umask 077; cat > " + tokenFile, Command: cmd})
	return nil
}

// parseLifetime reads a token lifetime as the CLI does: "30m", "24h",
// "7d" (Go durations, plus whole days with "d"), into seconds, rounded
// up. The API checks the bounds.
func parseLifetime(s string) (int64, error) {
	bad := fmt.Errorf("%q is not a token lifetime: give a duration such as 30m, 24h or 7d (from 1 minute to 30 days).", truncate(s, 40))
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, bad
		}
		return n * 86400, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, bad
	}
	sec := int64(d / time.Second)
	if d%time.Second > 0 {
		sec++
	}
	return sec, nil
}

// findToken is the token of r's {id} from the list (the API has no GET
// of one token).
func (c *Console) findToken(r *http.Request, u User) (tokenRow, error) {
	id := r.PathValue("id")
	var ts []api.RegistrationToken
	if err := c.Call(r, u, http.MethodGet, "/tokens", nil, &ts); err != nil {
		return tokenRow{}, err
	}
	for _, t := range ts {
		if t.ID == id {
			return tokenRowOf(t), nil
		}
	}
	return tokenRow{}, &APIError{Status: http.StatusNotFound, Code: "no_token",
		Message: fmt.Sprintf("There is no registration token %s in %s: open the list of registration tokens and choose one there.", truncate(id, 100), u.Tenant)}
}

// revokeTokenPage asks to confirm revoking a token.
func (c *Console) revokeTokenPage(w http.ResponseWriter, r *http.Request, u User) error {
	t, err := c.findToken(r, u)
	if err != nil {
		return err
	}
	c.render(w, r, u, http.StatusOK, "token-revoke", "tokens", t)
	return nil
}

// revokeToken revokes a token (DELETE /api/v1/tokens/{id}).
func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request, u User) error {
	var t api.RegistrationToken
	if err := c.Call(r, u, http.MethodDelete, "/tokens/"+url.PathEscape(r.PathValue("id")), nil, &t); err != nil {
		return err
	}
	row := tokenRowOf(t)
	return c.done(w, r, Prefix+"/tokens", fmt.Sprintf("Revoked registration token %s (group '%s', created by %s, used %s); it can no longer register connectors.",
		t.ID, t.Group, t.CreatedBy, row.UsesText))
}
