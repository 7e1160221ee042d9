package accesslog

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAppendString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{`quote " and \ backslash`, `"quote \" and \\ backslash"`},
		{"tab\tnew\nline\r\x00\x1b\x7f", `"tab\u0009new\u000aline\u000d\u0000\u001b\u007f"`},
		{"ünïcödé ✓", `"ünïcödé ✓"`},
		{"bad \xff byte", `"bad \ufffd byte"`},
		{"line\u2028sep\u2029", `"line\u2028sep\u2029"`},
		{strings.Repeat("a", maxField+10), `"` + strings.Repeat("a", maxField) + `…"`},
		{strings.Repeat("a", maxField-1) + "é", `"` + strings.Repeat("a", maxField-1) + `…"`}, // é cut in two
	} {
		got := string(AppendString(nil, tc.in))
		if got != tc.want {
			t.Errorf("AppendString(%.40q) = %.80s, want %.80s", tc.in, got, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("AppendString(%.40q) = %.80s is not valid JSON", tc.in, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\x1f\x7f", "\xff\xfe", "é", "\u2028", strings.Repeat("é", maxField)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: not a JSON string: %v", s, b, err)
		}
		if len(s) <= maxField && utf8.ValidString(s) && back != s {
			t.Fatalf("AppendString(%q) decodes to %q", s, back)
		}
		if len(b) > 6*maxField+len(`""…`) { // at worst \u00XX for each byte kept
			t.Fatalf("AppendString of %d bytes wrote %d bytes, over the limit", len(s), len(b))
		}
	})
}

func TestAppendJSON(t *testing.T) {
	e := &Entry{Time: time.Date(2026, 11, 26, 3, 4, 5, 123456789, time.UTC), RequestID: "abc", Tenant: "contoso.com", App: "web",
		Connector: "c_1", Client: "203.0.113.9", Method: "GET", Host: "web.example.com", Path: "/a%20b", Proto: "HTTP/1.1",
		Status: 502, Error: "backend_refused", TTFB: 1500 * time.Microsecond, Duration: 2 * time.Second, BytesIn: 5, BytesOut: 1234,
		UserAgent: `curl "8"`}
	line := AppendJSON(nil, e)
	if line[len(line)-1] != '\n' {
		t.Fatal("no newline at the end")
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := map[string]any{"time": "2026-11-26T03:04:05.123456Z", "request_id": "abc", "tenant": "contoso.com", "app": "web",
		"connector": "c_1", "client": "203.0.113.9", "method": "GET", "host": "web.example.com", "path": "/a%20b", "proto": "HTTP/1.1",
		"status": 502.0, "error": "backend_refused", "ttfb_ms": 1.5, "duration_ms": 2000.0, "bytes_in": 5.0, "bytes_out": 1234.0,
		"user_agent": `curl "8"`}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("%d fields, want %d: %s", len(m), len(want), line)
	}
	// Empty strings are left out.
	var short map[string]any
	json.Unmarshal(AppendJSON(nil, &Entry{Time: e.Time, Status: 200}), &short)
	if _, ok := short["connector"]; ok || short["status"] != 200.0 {
		t.Errorf("sparse entry: %v", short)
	}
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestSampling(t *testing.T) {
	for _, tc := range []struct {
		sample, ordinary, failures, want int
	}{
		{1, 10, 0, 10},
		{3, 9, 0, 3},
		{3, 10, 4, 4 + 4}, // 1st, 4th, 7th, 10th ordinary; every failure
		{100, 5, 2, 1 + 2},
	} {
		path := filepath.Join(t.TempDir(), "access.log")
		l, err := Open(Options{Path: path, Sample: tc.sample})
		if err != nil {
			t.Fatal(err)
		}
		for i := range tc.ordinary {
			l.Log(&Entry{Time: time.Now(), Status: 200 + i%300})
		}
		for i := range tc.failures {
			e := &Entry{Time: time.Now(), Status: 502}
			if i%2 == 1 {
				e.Status, e.Error = 429, "app_rate_limited"
			}
			l.Log(e)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(readLines(t, path)); got != tc.want {
			t.Errorf("sample %d, %d ordinary and %d failures: %d lines, want %d", tc.sample, tc.ordinary, tc.failures, got, tc.want)
		}
	}
}

func TestFileModeAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(&Entry{Time: time.Now(), RequestID: "first", Status: 200})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// What logrotate does: move the file, then signal.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Log(&Entry{Time: time.Now(), RequestID: "second", Status: 200})
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(&Entry{Time: time.Now(), RequestID: "third", Status: 200})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	ids := func(p string) (s []string) {
		for _, m := range readLines(t, p) {
			s = append(s, m["request_id"].(string))
		}
		return s
	}
	if got := strings.Join(ids(path+".1"), ","); got != "first,second" {
		t.Errorf("rotated file holds %s, want first,second", got)
	}
	if got := strings.Join(ids(path), ","); got != "third" {
		t.Errorf("new file holds %s, want third", got)
	}
}

func TestFlushedWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(Options{Path: path, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(&Entry{Time: time.Now(), Status: 204})
	deadline := time.Now().Add(10 * time.Second)
	for len(readLines(t, path)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the line was not flushed within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOpenFails(t *testing.T) {
	_, err := Open(Options{Path: filepath.Join(t.TempDir(), "missing", "access.log")})
	if err == nil || !strings.Contains(err.Error(), "cannot be opened") || !strings.Contains(err.Error(), "--access-log") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}
