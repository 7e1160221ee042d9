package accessclient

import (
	"errors"
	"strings"
)

// Challenge is one authentication challenge of a WWW-Authenticate header
// (RFC 9110 §11.6.1): a scheme and its parameters (names in lower case).
type Challenge struct {
	Scheme string
	Params map[string]string
}

// maxChallengeHeader bounds what ParseChallenges reads: a header from an
// untrusted server.
const maxChallengeHeader = 8 << 10

var errChallenge = errors.New("the WWW-Authenticate header is not a list of challenges")

// ParseChallenges parses a WWW-Authenticate header value:
//
//	challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param  = token BWS "=" BWS ( token / quoted-string )
//
// Several challenges may share one header, separated by commas. A
// token68 (Basic's credentials form) is kept as the parameter "".
// Duplicate parameter names are an error, as RFC 9110 says they must not
// occur.
func ParseChallenges(h string) ([]Challenge, error) {
	if len(h) > maxChallengeHeader {
		return nil, errChallenge
	}
	p := &parser{s: h}
	var out []Challenge
	for {
		p.skipListSeparators()
		if p.done() {
			break
		}
		scheme := p.token()
		if scheme == "" {
			return nil, errChallenge
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		if p.skipSpaces() && !p.done() && p.peek() != ',' {
			if err := p.params(&c); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errChallenge
	}
	return out, nil
}

// BearerChallenge finds the Bearer challenge among a response's
// WWW-Authenticate headers.
func BearerChallenge(headers []string) (Challenge, bool) {
	for _, h := range headers {
		cs, err := ParseChallenges(h)
		if err != nil {
			continue
		}
		for _, c := range cs {
			if strings.EqualFold(c.Scheme, "Bearer") {
				return c, true
			}
		}
	}
	return Challenge{}, false
}

type parser struct {
	s string
	i int
}

func (p *parser) done() bool { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }

// skipSpaces skips SP and HTAB and reports whether there were any.
func (p *parser) skipSpaces() bool {
	start := p.i
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
	return p.i > start
}

func (p *parser) skipListSeparators() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == ',') {
		p.i++
	}
}

func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *parser) token() string {
	start := p.i
	for !p.done() && isTChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// params reads the challenge's auth-params, or its token68, up to the
// start of the next challenge or the end.
func (p *parser) params(c *Challenge) error {
	start := p.i
	name, value, ok, err := p.param()
	if err != nil {
		return err
	}
	if !ok {
		p.i = start
		return p.token68(c)
	}
	for {
		key := strings.ToLower(name)
		if _, dup := c.Params[key]; dup {
			return errChallenge
		}
		c.Params[key] = value
		p.skipSpaces()
		if p.done() {
			return nil
		}
		if p.peek() != ',' {
			return errChallenge
		}
		p.skipListSeparators()
		if p.done() {
			return nil
		}
		// Another parameter of this challenge, or the next challenge's
		// scheme.
		next := p.i
		if name, value, ok, err = p.param(); err != nil {
			return err
		}
		if !ok {
			p.i = next
			return nil
		}
	}
}

// param reads name BWS "=" BWS ( token / quoted-string ); ok is false
// (and the position undefined) when the text is not one.
func (p *parser) param() (name, value string, ok bool, err error) {
	if name = p.token(); name == "" {
		return "", "", false, nil
	}
	p.skipSpaces()
	if p.done() || p.peek() != '=' {
		return "", "", false, nil
	}
	p.i++
	p.skipSpaces()
	if !p.done() && p.peek() == '"' {
		value, err = p.quoted()
		return name, value, err == nil, err
	}
	if value = p.token(); value == "" {
		return "", "", false, nil
	}
	return name, value, true, nil
}

// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
func (p *parser) token68(c *Challenge) error {
	start := p.i
	for !p.done() {
		ch := p.peek()
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~+/", ch) >= 0 {
			p.i++
			continue
		}
		break
	}
	if p.i == start {
		return errChallenge
	}
	for !p.done() && p.peek() == '=' {
		p.i++
	}
	c.Params[""] = p.s[start:p.i]
	p.skipSpaces()
	if !p.done() && p.peek() != ',' {
		return errChallenge
	}
	return nil
}

// quoted reads a quoted-string (with quoted-pairs).
func (p *parser) quoted() (string, error) {
	p.i++ // the opening quote
	var b strings.Builder
	for !p.done() {
		ch := p.peek()
		p.i++
		switch {
		case ch == '"':
			return b.String(), nil
		case ch == '\\':
			if p.done() || !qdText(p.peek()) {
				return "", errChallenge
			}
			b.WriteByte(p.peek())
			p.i++
		case qdText(ch):
			b.WriteByte(ch)
		default:
			return "", errChallenge
		}
	}
	return "", errChallenge
}

// qdText: HTAB, SP, VCHAR and obs-text, what a quoted-string holds.
func qdText(c byte) bool { return c == '\t' || (c >= 0x20 && c != 0x7f) }
