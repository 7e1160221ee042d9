// The walls between Sallyport's packages, checked rather than remembered:
// each rule of docs/architecture.md's package map that can be read off the
// import graph is a row of rules below, with its reason. The imports are
// read with go/parser from every .go file of the module whatever its build
// tags (the Windows files count), so the test needs no subprocess.
package internal_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// planned are packages the package map may name before they exist, while
// the change that creates them is on its way on another branch. Empty on
// main: a mapped package that does not exist fails.
var planned = []string{}

// The groups the walls speak of.
var (
	// siteSide runs at the site, next to the applications.
	siteSide = []string{"internal/connector", "internal/cloudlink", "internal/admincli", "internal/accessclient", "internal/diag",
		"internal/statedir", "internal/updater", "internal/doctor", "internal/service"}
	// cloudSide is the cloud service and its data.
	cloudSide = []string{"internal/cloud", "internal/edge", "internal/store", "internal/store/sqlite", "internal/store/postgres", "internal/datadir", "internal/tenancy", "internal/identity", "internal/console", "internal/clouddoctor"}
)

// rule is one wall. The rule is about pkg; it is skipped (and says so)
// while pkg, or a package in needs, does not exist yet: another branch
// creates it together with the change that makes the rule hold.
type rule struct {
	pkg   string
	needs []string
	// notReach: pkg must not depend on these, directly or through any
	// package of ours.
	notReach []string
	// only, when onlySet: the packages of ours pkg may import directly
	// (none when empty).
	only    []string
	onlySet bool
	why     string
}

func rules() []rule {
	var rs []rule
	for _, p := range siteSide {
		rs = append(rs, rule{pkg: p, notReach: cloudSide,
			why: "the site side (connector, its state directory, updater, doctor, diagnostics, admin client, services) never links the cloud side: they meet only in the wire protocol and the building blocks (tunnel, api, pki, problem, eventlog, version, release), so each side changes and is tested alone"})
	}
	for _, p := range cloudSide {
		rs = append(rs, rule{pkg: p, notReach: siteSide,
			why: "the cloud side never links the site side: the cloud knows a connector only through the tunnel and the API shapes"})
	}
	leaf := func(p, why string) rule { return rule{pkg: p, onlySet: true, why: why} }
	rs = append(rs,
		rule{pkg: "internal/tunnel", needs: []string{"internal/tunnel/mux", "internal/h2"}, only: []string{"internal/tunnel/mux", "internal/h2"}, onlySet: true,
			why: "tunnel is the wire protocol: it knows neither side and no other package of ours (the update messages live in release), so it is tested and reused alone; it imports only its own multiplexer and the HTTP/2 wrapper"},
		leaf("internal/tunnel/mux", "the session multiplexer is framing and flow control only, below everything else"),
		leaf("internal/h2", "the one wrapper of x/net/http2 sits below tunnel, cloud and connector"),
		leaf("internal/eventlog", "the event log owns the file format and the catalog; it does not decide when events are written, so it imports nothing of ours"),
		leaf("internal/problem", "every package reports failures through problem: it must import none of them"),
		leaf("internal/api", "the JSON shapes of the admin API are shared by server and clients: no logic, no imports of ours"),
		leaf("internal/version", "version is set at link time and read by everything"),
		leaf("internal/pki", "keys and certificates: no network, store or CLI, no package of ours"),
		leaf("internal/release", "the signed manifest and its choice of version: no network, store or files beyond what callers give"),
		leaf("internal/segment", "the internal addresses of network applications are parsed and matched alike by the API (cloud), the admin client and the connector: a building block that imports nothing of ours"),
		leaf("internal/socks5", "the SOCKS5 server of the access client is a protocol alone: destinations go to an injected Dialer, so it imports nothing of ours"),
		leaf("internal/store", "the Store interface and its records: implementations depend on it, not the other way"),
		rule{pkg: "internal/datadir", notReach: []string{"internal/cloud"},
			why: "the offline data-directory operations run without the server: they must not link the live cloud service"},
		rule{pkg: "internal/tenancy", notReach: []string{"internal/cloud", "internal/datadir"},
			why: "the name, domain and password rules are applied by both the API (cloud) and the offline commands (datadir): they sit below both"},
		leaf("internal/dnstest", "a test DNS server: it must not pull the product into tests that use it"),
		leaf("internal/testnet", "helpers any package's tests use: it must not pull the product into them"),
		rule{pkg: "internal/idptest", only: []string{"internal/testnet"}, onlySet: true,
			why: "a test OpenID provider (Ory Hydra, run as a process): it must not pull the product into tests that use it (it shares testnet's test helpers)"},
		rule{pkg: "internal/acmetest", only: []string{"internal/testnet"}, onlySet: true,
			why: "a test ACME server (Pebble, run as a process): it must not pull the product into tests that use it (it shares testnet's test helpers)"},
		rule{pkg: "internal/browsertest", only: []string{"internal/testnet"}, onlySet: true,
			why: "a test browser (headless Chromium): it must not pull the product into tests that use it (it shares testnet's test helpers)"},
		rule{pkg: "internal/store/sqlite", only: []string{"internal/store"}, onlySet: true, why: "an implementation of the Store interface knows only the interface"},
		rule{pkg: "internal/store/postgres", only: []string{"internal/store"}, onlySet: true, why: "an implementation of the Store interface knows only the interface"},
		leaf("internal/pgtest", "a test PostgreSQL server: it must not pull the product into tests that use it"),
		rule{pkg: "internal/store/storetest", only: []string{"internal/store"}, onlySet: true, why: "the conformance tests run against the interface only"},
		rule{pkg: "internal/problem/problemtest", only: []string{"internal/problem"}, onlySet: true, why: "a check of problems for any package's tests: it must not pull the product into them"},
		rule{pkg: "internal/diag", only: []string{"internal/version", "internal/statedir"}, onlySet: true,
			why: "the diagnostics bundle reads the state directory's non-secret files and never a key file: it needs nothing but the state directory's names and the version"},
		rule{pkg: "internal/edge", notReach: []string{"internal/store", "internal/cloud", "internal/admincli", "internal/api"},
			why: "the edge routes requests through an injected Dispatcher and route table: it never reads the store or the admin API itself"},
		rule{pkg: "internal/identity", notReach: []string{"internal/cloud", "internal/edge", "internal/connector"},
			why: "the assertions and the tenants' signing keys sit below the cloud (which wires them) and the edge (whose gate will mint through a Minter): they depend on the store and the building blocks only, so they are tested without a server"},
		rule{pkg: "internal/console", only: []string{"internal/api"}, onlySet: true,
			why: "the admin center has no rule of its own: every page reads and changes through the admin API (in process, as the signed-in user), so it imports the API's shapes and nothing that could reach the store"},
		rule{pkg: "internal/service", notReach: []string{"internal/cloud", "internal/store", "internal/updater"},
			why: "installing and restarting services is called by the updater, not the reverse"},
		rule{pkg: "internal/updater", needs: []string{"internal/statedir"}, notReach: []string{"internal/connector"},
			why: "the updater runs as root: it reads the connector's state directory through statedir and must not link the connector's proxy handler"},
		rule{pkg: "internal/doctor", notReach: []string{"internal/connector"},
			why: "the doctor inspects a connector from outside, through its state directory (statedir) and the control API (cloudlink), as a user would: it must not depend on the running agent's code"},
	)
	return rs
}

// http2Users may import golang.org/x/net/http2 (and its subpackages).
var http2Users = []string{"internal/h2"}

// cmdMustNotImport: cmd/sallyport is wiring (cobra commands and flags →
// config structs → Run/Serve). Speaking a protocol, TLS or SQL there means
// logic that belongs to a package of its own, where it can be tested.
var cmdMustNotImport = []string{
	"net", "net/http", "net/http/httputil", "net/http/httptrace", "crypto/tls", "crypto/x509",
	"database/sql", "golang.org/x/net/", "github.com/sallyport/sallyport/internal/store/sqlite", "github.com/sallyport/sallyport/internal/store/postgres",
	"github.com/sallyport/sallyport/internal/tunnel", "github.com/sallyport/sallyport/internal/h2",
}

// testOnly are packages for tests: no non-test file imports them, but
// those of another package for tests (a harness built on testnet).
var testOnly = []string{"internal/dnstest", "internal/problem/problemtest", "internal/store/storetest", "internal/testnet", "internal/idptest", "internal/acmetest", "internal/browsertest", "internal/pgtest"}

// browserDriver: the one package whose non-test files may import the
// browser driver (github.com/chromedp/...): a test harness, so the product
// never links it.
const browserDriver = "internal/browsertest"

// module is the repository as parsed: packages by their path relative to
// the module root ("internal/cloud", "cmd/sallyport"), with the imports
// of their non-test files and of their test files.
type module struct {
	modPath  string // module path
	root     string
	pkgs     map[string]*pkg
	fset     *token.FileSet
	external map[string][]string // rel package → the non-module imports of its non-test files
}

type pkg struct {
	imports     map[string]bool // module packages, rel, from non-test files
	testImports map[string]bool
	files       []*ast.File // non-test and test files, parsed whole
	fileNames   []string
	hasNonTest  bool
}

var loaded *module

func load(t *testing.T) *module {
	t.Helper()
	if loaded != nil {
		return loaded
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	mod := &module{modPath: string(m[1]), root: root, pkgs: map[string]*pkg{}, fset: token.NewFileSet(), external: map[string][]string{}}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(mod.fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		p := mod.pkgs[rel]
		if p == nil {
			p = &pkg{imports: map[string]bool{}, testImports: map[string]bool{}}
			mod.pkgs[rel] = p
		}
		p.files = append(p.files, f)
		p.fileNames = append(p.fileNames, path)
		test := strings.HasSuffix(name, "_test.go")
		if !test {
			p.hasNonTest = true
		}
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			ours, isOurs := strings.CutPrefix(ip, mod.modPath+"/")
			switch {
			case isOurs && test:
				p.testImports[ours] = true
			case isOurs:
				p.imports[ours] = true
			case !test && !slices.Contains(mod.external[rel], ip):
				mod.external[rel] = append(mod.external[rel], ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	loaded = mod
	return mod
}

func (m *module) exists(p string) bool { return m.pkgs[p] != nil }

// path returns a chain of imports from from to to through packages of
// ours (non-test files), or nil.
func (m *module) path(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := to; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		p := m.pkgs[cur]
		if p == nil {
			continue
		}
		next := make([]string, 0, len(p.imports))
		for imp := range p.imports {
			next = append(next, imp)
		}
		slices.Sort(next)
		for _, imp := range next {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

func TestWalls(t *testing.T) {
	m := load(t)
	for _, r := range rules() {
		if !m.exists(r.pkg) {
			t.Logf("skipped: %s does not exist yet (rule: %s)", r.pkg, r.why)
			continue
		}
		missing := slices.DeleteFunc(slices.Clone(r.needs), m.exists)
		if len(missing) > 0 {
			t.Logf("skipped for %s until %s exists (rule: %s)", r.pkg, strings.Join(missing, ", "), r.why)
			continue
		}
		for _, bad := range r.notReach {
			if bad == r.pkg {
				continue
			}
			if chain := m.path(r.pkg, bad); chain != nil {
				t.Errorf("%s depends on %s (%s): %s. Move what both need into a building block, or invert the dependency; if the wall itself moves, change this rule and docs/architecture.md together",
					r.pkg, bad, strings.Join(chain, " → "), r.why)
			}
		}
		if r.onlySet {
			for _, imp := range slices.Sorted(maps.Keys(m.pkgs[r.pkg].imports)) {
				if !slices.Contains(r.only, imp) {
					allowed := "no package of ours"
					if len(r.only) > 0 {
						allowed = "only " + strings.Join(r.only, ", ")
					}
					t.Errorf("%s imports %s, but may import %s: %s. Move the code that needs %s out of %s (or to its caller)",
						r.pkg, imp, allowed, r.why, imp, r.pkg)
				}
			}
		}
	}
}

func TestOnlyH2ImportsHTTP2(t *testing.T) {
	m := load(t)
	for _, p := range http2Users {
		if !m.exists(p) {
			t.Logf("skipped: %s does not exist yet, so the x/net/http2 users are not gathered there", p)
			return
		}
	}
	for _, rel := range sortedPkgs(m) {
		if slices.Contains(http2Users, rel) {
			continue
		}
		for _, ip := range m.external[rel] {
			if ip == "golang.org/x/net/http2" || strings.HasPrefix(ip, "golang.org/x/net/http2/") {
				t.Errorf("%s imports %s: only %s may (x/net/http2 and its deprecated APIs stay behind one file); call internal/h2 instead",
					rel, ip, strings.Join(http2Users, ", "))
			}
		}
	}
}

func TestOnlyBrowsertestImportsChromedp(t *testing.T) {
	m := load(t)
	for _, rel := range sortedPkgs(m) {
		if rel == browserDriver {
			continue
		}
		for _, ip := range m.external[rel] {
			if strings.HasPrefix(ip, "github.com/chromedp/") {
				t.Errorf("%s imports %s: only %s may (the browser driver is for tests); drive the browser through it", rel, ip, browserDriver)
			}
		}
	}
}

func TestCmdIsWiringOnly(t *testing.T) {
	m := load(t)
	const cmd = "cmd/sallyport"
	p := m.pkgs[cmd]
	if p == nil {
		t.Fatalf("%s not found", cmd)
	}
	for i, f := range p.files {
		if strings.HasSuffix(p.fileNames[i], "_test.go") {
			continue
		}
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			for _, bad := range cmdMustNotImport {
				if ip == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(ip, bad)) {
					t.Errorf("%s imports %s: cmd/sallyport is wiring only (flags → config → Run/Serve); move the code that needs %s into the package that owns the behaviour, where it is tested",
						filepath.Base(p.fileNames[i]), ip, ip)
				}
			}
		}
	}
}

func TestTestOnlyPackages(t *testing.T) {
	m := load(t)
	for _, rel := range sortedPkgs(m) {
		for _, imp := range slices.Sorted(maps.Keys(m.pkgs[rel].imports)) {
			if slices.Contains(testOnly, imp) && !slices.Contains(testOnly, rel) {
				t.Errorf("%s imports %s in a non-test file: %s is for tests only; import it from _test.go files", rel, imp, imp)
			}
		}
	}
}

// TestEventIDsAreNamed: eventlog.Log.Event takes an eventlog.ID, whose
// underlying type is int, so the compiler still accepts a bare number;
// this test does not. Each event is written by its named constant, which
// carries its level in the catalog.
func TestEventIDsAreNamed(t *testing.T) {
	m := load(t)
	for _, rel := range sortedPkgs(m) {
		if rel == "internal/eventlog" {
			continue
		}
		for _, f := range m.pkgs[rel].files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Event" {
					return true
				}
				bare := false
				switch a := call.Args[0].(type) {
				case *ast.BasicLit:
					bare = a.Kind == token.INT
				case *ast.CallExpr: // eventlog.ID(1200)
					if s, ok := a.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "ID" && len(a.Args) == 1 {
						_, bare = a.Args[0].(*ast.BasicLit)
					}
				}
				if bare {
					t.Errorf("%s: an event written by its number: use its eventlog constant (internal/eventlog/catalog.go), which carries its level",
						m.fset.Position(call.Pos()))
				}
				return true
			})
		}
	}
}

func sortedPkgs(m *module) []string {
	var out []string
	for rel := range m.pkgs {
		out = append(out, rel)
	}
	slices.Sort(out)
	return out
}

// mapRow is the first cell of a row of the package map: | `internal/x` |.
var mapRow = regexp.MustCompile("(?m)^\\| `([a-z0-9_./-]+)` \\|")

// TestPackageMap: every package of the module has a row in
// docs/architecture.md's package map, and every row names a package that
// exists (or is planned, see planned above).
func TestPackageMap(t *testing.T) {
	m := load(t)
	raw, err := os.ReadFile(filepath.Join(m.root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "## Package map")
	if start < 0 {
		t.Fatal(`docs/architecture.md has no "## Package map" section`)
	}
	section := doc[start:]
	if end := strings.Index(section[len("## Package map"):], "\n## "); end >= 0 {
		section = section[:len("## Package map")+end]
	}
	mapped := map[string]bool{}
	for _, sm := range mapRow.FindAllStringSubmatch(section, -1) {
		mapped[sm[1]] = true
	}
	if len(mapped) == 0 {
		t.Fatal("the package map of docs/architecture.md has no rows")
	}
	self, _ := filepath.Abs(".")
	selfRel, _ := filepath.Rel(m.root, self)
	for _, rel := range sortedPkgs(m) {
		if rel == filepath.ToSlash(selfRel) || rel == "." {
			continue // this test's own directory
		}
		if !mapped[rel] {
			t.Errorf("package %s is not in docs/architecture.md's package map: add a row \"| `%s` | what it owns | what it must not import |\"", rel, rel)
		}
	}
	for _, rel := range slices.Sorted(maps.Keys(mapped)) {
		if m.exists(rel) {
			continue
		}
		if slices.Contains(planned, rel) {
			t.Logf("%s is mapped and planned, not merged yet", rel)
			continue
		}
		t.Errorf("docs/architecture.md's package map has a row for %s, which does not exist: remove the row, or fix its name", rel)
	}
	// Catch a planned package that exists: the list is to be emptied.
	for _, p := range planned {
		if m.exists(p) {
			t.Logf("%s exists: remove it from planned in internal/arch_test.go once every planned package is merged", p)
		}
	}
}
