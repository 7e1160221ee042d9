// Package segment parses and matches the internal addresses of a network
// application (private access): the destinations a connector may dial for
// it. A segment is an exact DNS name (db.corp), a wildcard
// (*.corp.contoso.com: any name below, at any depth, not the apex), an IP
// address (10.1.0.5, [fd00::5]) or a CIDR prefix (10.1.0.0/24,
// [fd00::/64]), each with one port (:5432) or a port range (:1000-2000).
//
// The policy the connector applies with it: a destination given as a name
// is allowed when a name or wildcard segment covers the name (CoversName),
// or when every address it resolves to and that is dialled is covered by an
// IP or prefix segment (CoversAddr on the address actually dialled, so DNS
// cannot steer a connection outside the segments); a destination given as
// an IP is allowed only when an IP or prefix segment covers it.
package segment

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits.
const (
	MaxSegments = 64  // segments of one application
	MaxName     = 253 // characters of a DNS name (without the trailing dot)
	maxLabel    = 63
	maxInput    = MaxName + 2 + 12 // "*." + name + ":65535-65535"
)

// Kind is what a segment names.
type Kind uint8

// The kinds of segment.
const (
	Name     Kind = iota + 1 // an exact DNS name
	Wildcard                 // every name below a domain, not the domain itself
	Addr                     // one IP address
	Prefix                   // a CIDR prefix
)

// Segment is one internal address of a network application.
type Segment struct {
	Kind Kind
	// Host is the name (Name) or the domain below which names are covered
	// (Wildcard, without the "*."): lower case, no trailing dot.
	Host string
	// Prefix is the address (Addr, a prefix of the address's full length)
	// or the network (Prefix), masked.
	Prefix netip.Prefix
	// PortLo and PortHi are the ports covered, 1 ≤ PortLo ≤ PortHi.
	PortLo, PortHi uint16
}

// OneHost is the one host a segment names — the name (Name) or the
// address (Addr) — and false for a range (Wildcard, Prefix), which has
// no one host to try: what a probe or a check dials.
func (s Segment) OneHost() (string, bool) {
	switch s.Kind {
	case Name:
		return s.Host, true
	case Addr:
		return s.Prefix.Addr().String(), true
	}
	return "", false
}

// Parse reads one segment: HOST:PORT or HOST:LOW-HIGH, where HOST is a
// name, *.DOMAIN, an IPv4 address or prefix, or an IPv6 address or prefix
// in brackets ([fd00::1]:22, [fd00::/64]:22). Its error is one sentence
// that names the input.
func Parse(s string) (Segment, error) {
	if len(s) > maxInput {
		return Segment{}, fmt.Errorf("internal address %.40q… is too long: a name has at most %d characters", s, MaxName)
	}
	if s == "" {
		return Segment{}, errors.New("internal address is empty: write HOST:PORT, e.g. db.corp:5432")
	}
	host, ports, err := splitHostPorts(s)
	if err != nil {
		return Segment{}, err
	}
	var seg Segment
	seg.PortLo, seg.PortHi, err = parsePorts(s, ports)
	if err != nil {
		return Segment{}, err
	}
	if err := seg.parseHost(s, host); err != nil {
		return Segment{}, err
	}
	return seg, nil
}

// splitHostPorts splits s at its port separator: after the closing
// bracket of an IPv6 host, else at the last colon (a host without
// brackets has no colon of its own).
func splitHostPorts(s string) (host, ports string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("internal address %q has no closing bracket: write an IPv6 address as [fd00::1]:PORT", s)
		}
		host, rest := s[1:end], s[end+1:]
		if !strings.HasPrefix(rest, ":") || len(rest) == 1 {
			return "", "", fmt.Errorf("internal address %q has no port: write [ADDRESS]:PORT, e.g. [fd00::1]:22", s)
		}
		if !strings.Contains(host, ":") {
			return "", "", fmt.Errorf("internal address %q has brackets around something that is not an IPv6 address: brackets are for IPv6 only", s)
		}
		return host, rest[1:], nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 || i == len(s)-1 {
		return "", "", fmt.Errorf("internal address %q has no port: write HOST:PORT or HOST:LOW-HIGH, e.g. db.corp:5432", s)
	}
	host = s[:i]
	if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("internal address %q is an IPv6 address without brackets: write [ADDRESS]:PORT, e.g. [fd00::1]:22", s)
	}
	if host == "" {
		return "", "", fmt.Errorf("internal address %q has no host: write HOST:PORT, e.g. db.corp:5432", s)
	}
	return host, s[i+1:], nil
}

func parsePorts(s, ports string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(ports, "-")
	lo, err = parsePort(s, a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	hi, err = parsePort(s, b)
	if err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("internal address %q has a port range that ends before it starts: write LOW-HIGH, e.g. 1000-2000", s)
	}
	return lo, hi, nil
}

func parsePort(s, p string) (uint16, error) {
	if p == "" || len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" {
		return 0, fmt.Errorf("internal address %q has a port that is not a number: a port is 1 to 65535, or a range LOW-HIGH", s)
	}
	n, _ := strconv.Atoi(p)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("internal address %q has port %s, outside 1 to 65535", s, p)
	}
	return uint16(n), nil
}

func (seg *Segment) parseHost(s, host string) error {
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil || p.Addr().Zone() != "" {
			return fmt.Errorf("internal address %q has a network that is not a CIDR prefix: write e.g. 10.1.0.0/24:22 or [fd00::/64]:22", s)
		}
		if p.Addr().Is4In6() {
			return fmt.Errorf("internal address %q is an IPv4-mapped IPv6 network: write the IPv4 network itself, e.g. 10.1.0.0/24:22", s)
		}
		if p.Masked() != p {
			return fmt.Errorf("internal address %q has host bits set in its network: write %s", s, p.Masked())
		}
		seg.Kind, seg.Prefix = Prefix, p
		if p.IsSingleIP() {
			seg.Kind = Addr
		}
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("internal address %q has an IPv6 zone: segments cover addresses without a zone", s)
		}
		a = a.Unmap()
		seg.Kind, seg.Prefix = Addr, netip.PrefixFrom(a, a.BitLen())
		return nil
	}
	if strings.Contains(host, ":") {
		return fmt.Errorf("internal address %q is not a valid IPv6 address", s)
	}
	name := strings.ToLower(host)
	kind := Name
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		kind, name = Wildcard, rest
	}
	name = strings.TrimSuffix(name, ".")
	if err := checkName(s, name); err != nil {
		return err
	}
	if looksNumeric(name) {
		return fmt.Errorf("internal address %q is neither an IP address nor a DNS name: write an IPv4 address as four numbers, e.g. 10.1.0.5", s)
	}
	seg.Kind, seg.Host = kind, name
	return nil
}

// checkName checks a DNS name: labels of letters, digits, '-' and '_'
// (not at a label's ends for '-'), 1 to 63 characters each, 253 in all.
func checkName(s, name string) error {
	if name == "" {
		return fmt.Errorf("internal address %q has no host: write HOST:PORT, e.g. db.corp:5432", s)
	}
	if len(name) > MaxName {
		return fmt.Errorf("internal address %q has a name of %d characters: a DNS name has at most %d", s, len(name), MaxName)
	}
	for _, label := range strings.Split(name, ".") {
		switch {
		case label == "":
			return fmt.Errorf("internal address %q has an empty label in its name (two dots in a row, or a dot at the start)", s)
		case label == "*":
			return fmt.Errorf("internal address %q has a wildcard that is not the whole first label: write *.DOMAIN:PORT, e.g. *.corp.contoso.com:443", s)
		case len(label) > maxLabel:
			return fmt.Errorf("internal address %q has a label of %d characters: a DNS label has at most %d", s, len(label), maxLabel)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("internal address %q has a label that starts or ends with '-', which a DNS name cannot", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("internal address %q has %q in its name: a DNS name has letters, digits, '-' and '.' only (and one leading '*.' for a wildcard)", s, string(rune(c)))
			}
		}
	}
	return nil
}

// looksNumeric: a name whose last label is all digits would be taken for
// an IPv4 address by resolvers (10.1.0, 10.1.0.256).
func looksNumeric(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	return strings.TrimLeft(last, "0123456789") == ""
}

// String is the segment in its canonical form, which Parse reads back to
// the same segment.
func (seg Segment) String() string {
	var host string
	switch seg.Kind {
	case Name:
		host = seg.Host
	case Wildcard:
		host = "*." + seg.Host
	case Addr:
		host = seg.Prefix.Addr().String()
		if seg.Prefix.Addr().Is6() {
			host = "[" + host + "]"
		}
	case Prefix:
		host = seg.Prefix.String()
		if seg.Prefix.Addr().Is6() {
			host = "[" + host + "]"
		}
	default:
		return "invalid"
	}
	ports := strconv.Itoa(int(seg.PortLo))
	if seg.PortHi != seg.PortLo {
		ports += "-" + strconv.Itoa(int(seg.PortHi))
	}
	return host + ":" + ports
}

func (seg Segment) coversPort(port uint16) bool {
	return port != 0 && seg.PortLo <= port && port <= seg.PortHi
}

// Set is the segments of one application.
type Set []Segment

// ParseSet reads an application's internal addresses: at most
// MaxSegments; an address given twice (in canonical form) is kept once.
func ParseSet(addrs []string) (Set, error) {
	if len(addrs) > MaxSegments {
		return nil, fmt.Errorf("an application has at most %d internal addresses, not %d: use prefixes, wildcards or port ranges to cover more", MaxSegments, len(addrs))
	}
	set := make(Set, 0, len(addrs))
	seen := make(map[Segment]bool, len(addrs))
	for _, a := range addrs {
		seg, err := Parse(strings.TrimSpace(a))
		if err != nil {
			return nil, err
		}
		if seen[seg] {
			continue
		}
		seen[seg] = true
		set = append(set, seg)
	}
	return set, nil
}

// Strings is the set in canonical form.
func (set Set) Strings() []string {
	out := make([]string, len(set))
	for i, seg := range set {
		out[i] = seg.String()
	}
	return out
}

// CoversName reports whether a name or wildcard segment covers host:port.
// host is the name as asked (case and a trailing dot do not matter). A
// host that is an IP address is checked with CoversAddr: names never cover
// addresses.
func (set Set) CoversName(host string, port uint16) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return false
		}
		return set.CoversAddr(netip.AddrPortFrom(a, port))
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	for _, seg := range set {
		if !seg.coversPort(port) {
			continue
		}
		switch seg.Kind {
		case Name:
			if host == seg.Host {
				return true
			}
		case Wildcard:
			if len(host) > len(seg.Host)+1 && strings.HasSuffix(host, seg.Host) && host[len(host)-len(seg.Host)-1] == '.' {
				return true
			}
		}
	}
	return false
}

// CoversAddr reports whether an IP or prefix segment covers ap (an
// address after resolution, the one dialled). IPv4-mapped IPv6 addresses
// are taken as the IPv4 address; an address with a zone is never covered.
func (set Set) CoversAddr(ap netip.AddrPort) bool {
	a := ap.Addr()
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	for _, seg := range set {
		if (seg.Kind == Addr || seg.Kind == Prefix) && seg.coversPort(ap.Port()) && seg.Prefix.Contains(a) {
			return true
		}
	}
	return false
}
