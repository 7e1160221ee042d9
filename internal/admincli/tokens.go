package admincli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sallyport/sallyport/internal/api"
	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// ParseLifetime reads a token lifetime such as "30m", "24h" or "7d" (Go
// durations, plus whole days with "d") into seconds, rounded up. The cloud
// checks the bounds (1 minute to 30 days).
func ParseLifetime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	bad := problem.Newf(400, "bad_token_lifetime", "give a duration such as 30m, 24h or 7d (at most 30d)",
		"%q is not a token lifetime", s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, bad
		}
		return n * 86400, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	sec := int64(d / time.Second)
	if d%time.Second > 0 {
		sec++
	}
	return sec, nil
}

// CreateToken creates a registration token and prints it (the only time it
// is shown) with a ready 'connector register' command line.
func (c *Client) CreateToken(ctx context.Context, o Output, in api.CreateRegistrationTokenRequest) error {
	var t api.CreateRegistrationTokenResponse
	if err := c.Do(ctx, http.MethodPost, "/tokens", in, &t); err != nil {
		return err
	}
	return o.Emit(t, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Created registration token %s for connector group '%s' of %s, valid until %s (%s), for %s.\n",
			t.ID, t.Group, c.p.Tenant, when(t.ExpiresAt), api.LifetimeText(t.ExpiresAt.Sub(t.CreatedAt)), api.RegistrationsText(t.MaxUses))
		fmt.Fprintln(tw, "The token is shown only now; keep it like a password:")
		fmt.Fprintln(tw, t.Token)
		// The command names a file, not the token: a token on a command
		// line is seen by every user of the machine (ps) and kept in the
		// shell's history (docs/cli.md, connector register).
		fmt.Fprintln(tw, "Register a connector with it (no password needed): on the connector's machine, save the token in a file only you can read")
		fmt.Fprintf(tw, "(for example: umask 077; cat > %s, paste the token, press Enter and Ctrl-D), then run:\n", TokenFileName)
		fmt.Fprintf(tw, "  sallyport connector register --cloud %s --ca-fingerprint %s --token-file %s\n",
			c.p.CloudURL, pki.Fingerprint(c.ca), TokenFileName)
	})
}

// TokenFileName is the file the printed register command reads the
// registration token from.
const TokenFileName = "sallyport-token"

// ListTokens prints the registration tokens (never the tokens themselves).
func (c *Client) ListTokens(ctx context.Context, o Output) error {
	var ts []api.RegistrationToken
	if err := c.Do(ctx, http.MethodGet, "/tokens", nil, &ts); err != nil {
		return err
	}
	return o.Emit(ts, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tGROUP\tCREATED BY\tCREATED\tEXPIRES\tUSES\tSTATE")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, dash(t.Group), t.CreatedBy, when(t.CreatedAt), when(t.ExpiresAt),
				usesOf(t), stateText(t))
		}
	})
}

// RevokeToken revokes a registration token.
func (c *Client) RevokeToken(ctx context.Context, o Output, id string) error {
	var t api.RegistrationToken
	if err := c.Do(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, &t); err != nil {
		return err
	}
	return o.Emit(t, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Revoked registration token %s (group '%s', created by %s, used %s) on %s; it can no longer register connectors.\n",
			t.ID, t.Group, t.CreatedBy, usesOf(t), when(t.RevokedAt))
	})
}

func usesOf(t api.RegistrationToken) string {
	if t.MaxUses == 0 {
		return fmt.Sprintf("%d/unlimited", t.Uses)
	}
	return fmt.Sprintf("%d/%d", t.Uses, t.MaxUses)
}

func stateText(t api.RegistrationToken) string {
	return strings.ReplaceAll(t.State, "_", " ")
}
