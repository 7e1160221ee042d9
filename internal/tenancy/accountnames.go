package tenancy

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/sallyport/sallyport/internal/edge"
	"github.com/sallyport/sallyport/internal/problem"
)

// The rules for the names of users, connector groups and user groups, the same for the
// CLI, the API and the store (docs/cli.md, "Names").
const (
	MaxUserLocalLength = 64  // characters before the @ (RFC 5321's 64)
	MaxUserNameLength  = 320 // characters in all (RFC 3696's 64 + 1 + 255)
	MaxGroupNameLength = 64  // characters, not bytes: 'Zürich' is 6
)

// userNameRule is the step of every refused user name.
const userNameRule = "give name@domain with up to 64 letters, digits, '.', '_', '+' or '-' before the @ and no spaces"

// normalizeUser returns the user name u compares as: outer spaces
// removed, Unicode NFC, lower case ('Jörg@Contoso.com' is
// 'jörg@contoso.com'). why says what is wrong with it, "" when it is valid.
func normalizeUser(u string) (name, local, domain, why string) {
	name = strings.ToLower(norm.NFC.String(strings.TrimSpace(u)))
	if utf8.RuneCountInString(name) > MaxUserNameLength {
		return name, "", "", fmt.Sprintf("it is longer than %d characters", MaxUserNameLength)
	}
	i := strings.LastIndexByte(name, '@')
	if i <= 0 || i == len(name)-1 {
		return name, "", "", "it is not of the form name@domain"
	}
	local, domain = name[:i], name[i+1:]
	if strings.ContainsFunc(local, unicode.IsSpace) {
		return name, "", "", "spaces are not allowed"
	}
	if utf8.RuneCountInString(local) > MaxUserLocalLength {
		return name, "", "", fmt.Sprintf("the part before the @ is longer than %d characters", MaxUserLocalLength)
	}
	for _, c := range local {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsMark(c) && !strings.ContainsRune("._+-", c) {
			return name, "", "", fmt.Sprintf("the part before the @ may hold only letters, digits, '.', '_', '+' and '-', not %q", c)
		}
	}
	if !edge.ValidDNSName(domain) || !strings.Contains(domain, ".") {
		return name, "", "", "the part after the @ is not a DNS domain"
	}
	return name, local, domain, ""
}

// SplitUser splits a valid user name "name@domain" (see normalizeUser;
// u must already be normalised).
func SplitUser(u string) (name, domain string, ok bool) {
	n, local, domain, why := normalizeUser(u)
	if why != "" || n != u {
		return "", "", false
	}
	return local, domain, true
}

// CheckUserName normalises a user name of the tenant domain, or refuses it
// with code and the rule it breaks.
func CheckUserName(code, raw, domain string) (string, error) {
	name, _, d, why := normalizeUser(raw)
	if why == "" && domain != "" && d != domain {
		return "", problem.Newf(http.StatusBadRequest, code,
			fmt.Sprintf("give a user of this tenant's domain, for example someone@%s", domain),
			"%q is not a user name of the domain %s", Truncate(raw, 80), domain)
	}
	if why != "" {
		return "", problem.Newf(http.StatusBadRequest, code, userNameRule, "%q is not a valid user name: %s", Truncate(raw, 80), why)
	}
	return name, nil
}

// CheckGroupName returns a connector group name in NFC, or refuses it with
// the rule it breaks. Names are compared by store.GroupKey
// (case-insensitively).
func CheckGroupName(raw string) (string, error) {
	return checkGroupName(raw, "bad_group_name", "group name")
}

// CheckUserGroupName returns a user group name in NFC, or refuses it with
// the rule it breaks: the rules of connector group names (user groups are
// another namespace, compared the same way), refused with their own code.
func CheckUserGroupName(raw string) (string, error) {
	return checkGroupName(raw, "bad_user_group_name", "user group name")
}

// checkGroupName applies the group name rules; code and what name the
// kind of group in the refusal.
func checkGroupName(raw, code, what string) (string, error) {
	name := norm.NFC.String(raw)
	why := ""
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(raw):
		why = "it is not UTF-8 text"
	case n == 0:
		why = "it is empty"
	case strings.TrimFunc(name, unicode.IsSpace) != name:
		why = "it starts or ends with a space"
	case n > MaxGroupNameLength:
		why = fmt.Sprintf("it is longer than %d characters", MaxGroupNameLength)
	default:
		for _, c := range name {
			if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsMark(c) && !strings.ContainsRune(" ._-", c) {
				why = fmt.Sprintf("it may hold only letters, digits, spaces, '.', '_' and '-', not %q", c)
				break
			}
		}
	}
	if why != "" {
		return "", problem.Newf(http.StatusBadRequest, code,
			fmt.Sprintf("use 1 to %d letters, digits, spaces (not at either end), '.', '_' or '-'", MaxGroupNameLength),
			"%q is not a valid %s: %s", Truncate(raw, 80), what, why)
	}
	return name, nil
}
