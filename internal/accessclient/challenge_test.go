package accessclient

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   string
		want []Challenge
	}{
		{`Bearer realm="sallyport", authorization_uri="https://sallyport.example.com/oauth/device_authorization"`,
			[]Challenge{{"Bearer", map[string]string{"realm": "sallyport", "authorization_uri": "https://sallyport.example.com/oauth/device_authorization"}}}},
		{`Bearer`, []Challenge{{"Bearer", map[string]string{}}}},
		{`bearer REALM = sallyport`, []Challenge{{"bearer", map[string]string{"realm": "sallyport"}}}},
		{`Basic realm="a, b", Bearer realm="x\"y", error="invalid_token"`,
			[]Challenge{{"Basic", map[string]string{"realm": "a, b"}}, {"Bearer", map[string]string{"realm": `x"y`, "error": "invalid_token"}}}},
		{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`,
			[]Challenge{{"Newauth", map[string]string{"realm": "apps", "type": "1", "title": `Login to "apps"`}}, {"Basic", map[string]string{"realm": "simple"}}}},
		{`Negotiate abc==, Bearer`, []Challenge{{"Negotiate", map[string]string{"": "abc=="}}, {"Bearer", map[string]string{}}}},
		{`, Bearer realm=x ,, `, []Challenge{{"Bearer", map[string]string{"realm": "x"}}}},
		{`Bearer realm=`, []Challenge{{"Bearer", map[string]string{"": "realm="}}}}, // a token68 with padding
	}
	for _, tc := range tests {
		got, err := ParseChallenges(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseChallenges(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `  ,`, `Bearer realm="open`, `Bearer realm="a" junk`, `Bearer realm=a, realm=b`,
		`Bearer realm="a` + "\x01" + `"`, `"Bearer"`, `Basic abc def`, strings.Repeat("a", maxChallengeHeader+1)} {
		if got, err := ParseChallenges(bad); err == nil {
			t.Errorf("ParseChallenges(%q) = %v, want an error", bad, got)
		}
	}
}

func TestBearerChallenge(t *testing.T) {
	c, ok := BearerChallenge([]string{`Basic realm="x"`, `garbage "`, `Negotiate, Bearer realm="sallyport", authorization_uri="https://c/oauth/device_authorization"`})
	if !ok || c.Params["authorization_uri"] != "https://c/oauth/device_authorization" {
		t.Fatalf("BearerChallenge = %v, %v", c, ok)
	}
	if _, ok := BearerChallenge([]string{`Basic realm="x"`}); ok {
		t.Fatal("a Bearer challenge found in Basic")
	}
}

// FuzzParseChallenges: any header parses or fails without panicking, and
// what parses is written back and parsed to the same challenges.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Bearer realm="sallyport", authorization_uri="https://sallyport.localhost:8443/oauth/device_authorization"`,
		`Basic realm="a, b", Bearer realm="x\"y"`, `Negotiate abc==, Bearer`, `Bearer realm=`, `a b=c, d e="f\\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		cs, err := ParseChallenges(h)
		if err != nil {
			return
		}
		again, err := ParseChallenges(formatChallenges(cs))
		if err != nil || !reflect.DeepEqual(cs, again) {
			t.Fatalf("%q parsed to %v, written back as %q, parsed to %v, %v", h, cs, formatChallenges(cs), again, err)
		}
	})
}

// formatChallenges writes challenges back (every value quoted).
func formatChallenges(cs []Challenge) string {
	var parts []string
	for _, c := range cs {
		s := c.Scheme
		if v, ok := c.Params[""]; ok {
			s += " " + v
		} else {
			var ps []string
			for _, k := range sortedKeys(c.Params) {
				ps = append(ps, k+`="`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c.Params[k])+`"`)
			}
			if len(ps) > 0 {
				s += " " + strings.Join(ps, ", ")
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}
