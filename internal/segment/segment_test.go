package segment

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the canonical form, or "" when in is refused
		kind     Kind
		errWords string
	}{
		{in: "db.corp:5432", want: "db.corp:5432", kind: Name},
		{in: "DB.Corp.:5432", want: "db.corp:5432", kind: Name},
		{in: "db:22", want: "db:22", kind: Name},
		{in: "my_host.corp:22", want: "my_host.corp:22", kind: Name},
		{in: "*.corp.contoso.com:443", want: "*.corp.contoso.com:443", kind: Wildcard},
		{in: "*.Corp:1000-2000", want: "*.corp:1000-2000", kind: Wildcard},
		{in: "10.1.0.5:22", want: "10.1.0.5:22", kind: Addr},
		{in: "10.1.0.5/32:22", want: "10.1.0.5:22", kind: Addr},
		{in: "10.1.0.0/24:22", want: "10.1.0.0/24:22", kind: Prefix},
		{in: "0.0.0.0/0:1-65535", want: "0.0.0.0/0:1-65535", kind: Prefix},
		{in: "[fd00::5]:22", want: "[fd00::5]:22", kind: Addr},
		{in: "[FD00::/64]:3389", want: "[fd00::/64]:3389", kind: Prefix},
		{in: "[::ffff:10.1.0.5]:22", want: "10.1.0.5:22", kind: Addr},
		{in: "dns.corp:53", want: "dns.corp:53", kind: Name},
		{in: "db.corp:65535", want: "db.corp:65535", kind: Name},
		{in: "db.corp:7-7", want: "db.corp:7", kind: Name},

		{in: "", errWords: "empty"},
		{in: "db.corp", errWords: "no port"},
		{in: "db.corp:", errWords: "no port"},
		{in: ":22", errWords: "no host"},
		{in: "db.corp:0", errWords: "outside 1 to 65535"},
		{in: "db.corp:65536", errWords: "outside 1 to 65535"},
		{in: "db.corp:http", errWords: "not a number"},
		{in: "db.corp:+22", errWords: "not a number"},
		{in: "db.corp:2000-1000", errWords: "ends before it starts"},
		{in: "db.corp:1000-", errWords: "not a number"},
		{in: "db.corp:1-2-3", errWords: "not a number"},
		{in: "fd00::1:22", errWords: "without brackets"},
		{in: "[fd00::1]", errWords: "no port"},
		{in: "[fd00::1:22", errWords: "no closing bracket"},
		{in: "[db.corp]:22", errWords: "IPv6 only"},
		{in: "[fe80::1%eth0]:22", errWords: "zone"},
		{in: "10.1.0.5/24:22", errWords: "host bits set in its network: write 10.1.0.0/24"},
		{in: "10.1.0.0/33:22", errWords: "not a CIDR prefix"},
		{in: "[::ffff:10.1.0.0/120]:22", errWords: "IPv4-mapped"},
		{in: "10.1.0:22", errWords: "neither an IP address nor a DNS name"},
		{in: "10.1.0.256:22", errWords: "neither an IP address nor a DNS name"},
		{in: "*:22", errWords: "not the whole first label"},
		{in: "*.:22", errWords: "no host"},
		{in: "a.*.corp:22", errWords: "not the whole first label"},
		{in: "*db.corp:22", errWords: `"*" in its name`},
		{in: "db..corp:22", errWords: "empty label"},
		{in: ".db.corp:22", errWords: "empty label"},
		{in: "-db.corp:22", errWords: "starts or ends with '-'"},
		{in: "db corp:22", errWords: `" " in its name`},
		{in: strings.Repeat("a", 64) + ".corp:22", errWords: "label of 64 characters"},
		{in: strings.Repeat("abcdefg.", 32) + "corp:22", errWords: "at most 253"},
		{in: strings.Repeat("a", 400) + ":22", errWords: "too long"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			seg, err := Parse(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want an error with %q", tc.in, seg, tc.errWords)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.errWords) {
					t.Errorf("Parse(%q) error %q, want words %q", tc.in, msg, tc.errWords)
				}
				if strings.Contains(strings.ReplaceAll(msg, "e.g. ", ""), ". ") || strings.Contains(msg, "\n") {
					t.Errorf("Parse(%q) error %q is more than one sentence", tc.in, msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := seg.String(); got != tc.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
			if seg.Kind != tc.kind {
				t.Errorf("Parse(%q).Kind = %d, want %d", tc.in, seg.Kind, tc.kind)
			}
			again, err := Parse(seg.String())
			if err != nil || again != seg {
				t.Errorf("Parse(String()) = %v, %v; want %v", again, err, seg)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	set, err := ParseSet([]string{
		"db.corp:5432",
		"*.corp.contoso.com:443",
		"10.1.0.0/24:22",
		"10.2.0.7:3389",
		"[fd00::/64]:1000-2000",
		"dns.corp:53",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		port uint16
		want bool
	}{
		{"db.corp", 5432, true},
		{"DB.CORP.", 5432, true},
		{"db.corp", 5433, false},
		{"db.corp", 0, false},
		{"x.db.corp", 5432, false},
		{"corp", 5432, false},
		{"a.corp.contoso.com", 443, true},
		{"a.b.c.corp.contoso.com", 443, true},
		{"corp.contoso.com", 443, false},        // the apex is not covered
		{"xcorp.contoso.com", 443, false},       // a suffix that is not a label boundary
		{"a.corp.contoso.com.evil", 443, false}, // not a suffix at all
		{"a.corp.contoso.com", 80, false},
		{"10.1.0.9", 22, true}, // an IP literal is checked as an address
		{"10.1.1.9", 22, false},
		{"10.2.0.7", 3389, true},
		{"10.2.0.8", 3389, false},
		{"fd00::1", 1500, true},
		{"fd00::1", 999, false},
		{"fe80::1%eth0", 1500, false},
		{"", 22, false},
		{".", 22, false},
		{"dns.corp", 53, true},
	} {
		if got := set.CoversName(tc.host, tc.port); got != tc.want {
			t.Errorf("CoversName(%q, %d) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
	for _, tc := range []struct {
		ap   string
		want bool
	}{
		{"10.1.0.1:22", true},
		{"10.1.0.255:22", true},
		{"10.1.1.0:22", false},
		{"10.1.0.1:23", false},
		{"[::ffff:10.1.0.1]:22", true}, // IPv4-mapped: the IPv4 address
		{"10.2.0.7:3389", true},
		{"[fd00::abcd]:2000", true},
		{"[fd01::abcd]:2000", false},
		{"[fe80::1%eth0]:1500", false},
	} {
		ap := netip.MustParseAddrPort(tc.ap)
		if got := set.CoversAddr(ap); got != tc.want {
			t.Errorf("CoversAddr(%s) = %v, want %v", tc.ap, got, tc.want)
		}
	}
	if set.CoversAddr(netip.AddrPort{}) {
		t.Error("CoversAddr(zero) = true")
	}
	// Names never cover addresses, and addresses never cover names.
	names := Set{must(t, "db.corp:5432")}
	if names.CoversAddr(netip.MustParseAddrPort("10.1.0.1:5432")) {
		t.Error("a name segment covers an address")
	}
	if (Set{must(t, "0.0.0.0/0:1-65535")}).CoversName("db.corp", 5432) {
		t.Error("a prefix segment covers a name")
	}
}

func must(t *testing.T, s string) Segment {
	t.Helper()
	seg, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return seg
}

func TestParseSet(t *testing.T) {
	set, err := ParseSet([]string{" db.corp:22 ", "DB.corp:22", "db.corp:23"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Strings(), " "); got != "db.corp:22 db.corp:23" {
		t.Errorf("ParseSet kept %q, want the duplicate dropped", got)
	}
	if _, err := ParseSet([]string{"db.corp:22", "db.corp"}); err == nil || !strings.Contains(err.Error(), `"db.corp" has no port`) {
		t.Errorf("ParseSet with a bad address: %v", err)
	}
	many := make([]string, MaxSegments+1)
	for i := range many {
		many[i] = fmt.Sprintf("h%d.corp:22", i)
	}
	if _, err := ParseSet(many[:MaxSegments]); err != nil {
		t.Errorf("ParseSet of %d: %v", MaxSegments, err)
	}
	if _, err := ParseSet(many); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("ParseSet of %d: %v, want the limit", len(many), err)
	}
	if set, err := ParseSet(nil); err != nil || len(set) != 0 {
		t.Errorf("ParseSet(nil) = %v, %v", set, err)
	}
}

// FuzzParse: Parse never panics, and what it accepts prints in a form it
// reads back to the same segment, which covers its own first port.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"db.corp:5432", "*.corp.contoso.com:443", "10.1.0.0/24:22", "[fd00::/64]:1000-2000",
		"[::ffff:10.1.0.5]:22", "10.1.0.5/24:22", "a.*.b:1", "[fe80::1%eth0]:22", "db.corp:0-65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seg, err := Parse(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		again, err := Parse(seg.String())
		if err != nil || again != seg {
			t.Fatalf("Parse(%q) = %v; Parse(%q) = %v, %v", s, seg, seg.String(), again, err)
		}
		if seg.PortLo < 1 || seg.PortHi < seg.PortLo {
			t.Fatalf("Parse(%q): ports %d-%d", s, seg.PortLo, seg.PortHi)
		}
		set := Set{seg}
		switch seg.Kind {
		case Name:
			if !set.CoversName(seg.Host, seg.PortLo) {
				t.Fatalf("%v does not cover its own name", seg)
			}
		case Wildcard:
			if !set.CoversName("x."+seg.Host, seg.PortHi) || set.CoversName(seg.Host, seg.PortHi) {
				t.Fatalf("%v: wrong cover of x.%s or its apex", seg, seg.Host)
			}
		case Addr, Prefix:
			if !set.CoversAddr(netip.AddrPortFrom(seg.Prefix.Addr(), seg.PortLo)) {
				t.Fatalf("%v does not cover its own address", seg)
			}
		default:
			t.Fatalf("Parse(%q): kind %d", s, seg.Kind)
		}
	})
}

func TestOneHost(t *testing.T) {
	for _, tt := range []struct {
		in, host string
		ok       bool
	}{
		{"db.corp:5432", "db.corp", true},
		{"10.1.0.7:22", "10.1.0.7", true},
		{"[fd00::1]:22", "fd00::1", true},
		{"10.1.0.0/24:22", "", false},
		{"*.corp:443", "", false},
	} {
		seg, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if host, ok := seg.OneHost(); host != tt.host || ok != tt.ok {
			t.Errorf("%s: OneHost() = %q, %v, want %q, %v", tt.in, host, ok, tt.host, tt.ok)
		}
	}
}
