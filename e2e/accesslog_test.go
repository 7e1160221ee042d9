package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAccessLog: 'cloud serve --access-log' writes a JSON line per
// application request — answered, refused by the edge, failed at the
// backend — with the request id the client got; SIGHUP reopens the file
// after a rotation; a path that cannot be opened stops serve with one
// sentence.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "access.log")
	c := startCloud(t, "--access-log", logPath)
	b := newBackend(t)
	site := newRunner(t, "site")
	st := c.mustRegister(t, site, filepath.Join(site.dir, "connector"), contosoAdmin, contosoPW)
	web := c.publish(t, c.admin, "web", b.url)
	refused := c.publish(t, c.admin, "refused", "http://127.0.0.1:"+freePort(t)+"/")
	c.runConnector(t, c.admin, st)

	type want struct {
		host, path  string
		status      int
		code, appNm string
	}
	var wants []want
	ids := map[string]want{}
	get := func(host, path string, w want) {
		resp, _ := c.get(t, host, path+"?secret=hunter2", "User-Agent", "e2e-agent")
		if resp.StatusCode != w.status {
			t.Fatalf("GET %s%s: %d, want %d", host, path, resp.StatusCode, w.status)
		}
		ids[resp.Header.Get("Sallyport-Request-Id")] = w
		wants = append(wants, w)
	}
	get(web.ExternalHost, "/page", want{web.ExternalHost, "/page", 200, "", "web"})
	// An upload over HTTP/1.1: its bytes both ways.
	post, err := http.NewRequest("POST", c.appURL(web.ExternalHost, "/echo"), strings.NewReader(strings.Repeat("u", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	post.Header.Set("User-Agent", "e2e-agent")
	resp, err := c.client(web.ExternalHost, "h1").Do(post)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /echo: %d", resp.StatusCode)
	}
	postID := resp.Header.Get("Sallyport-Request-Id")
	ids[postID] = want{web.ExternalHost, "/echo", 200, "", "web"}
	wants = append(wants, ids[postID])
	get(refused.ExternalHost, "/x", want{refused.ExternalHost, "/x", 502, "backend_refused", "refused"})
	get("nothing-contoso."+cloudName, "/", want{"nothing-contoso." + cloudName, "/", 404, "no_application", ""})

	lines := func(path string, n int) []map[string]any {
		t.Helper()
		var out []map[string]any
		ok := eventually(readyTimeout, func() bool { // flushed within a second
			out = nil
			f, err := os.Open(path)
			if err != nil {
				return false
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("access log line %q: %v", sc.Text(), err)
				}
				out = append(out, m)
			}
			return len(out) >= n
		})
		if !ok {
			t.Fatalf("%s has %d lines, want %d", path, len(out), n)
		}
		return out
	}
	got := lines(logPath, len(wants))
	for _, m := range got {
		id, _ := m["request_id"].(string)
		w, ok := ids[id]
		if !ok {
			t.Errorf("line with an unknown request id: %v", m)
			continue
		}
		if m["status"] != float64(w.status) || !strings.HasPrefix(m["host"].(string), w.host) || m["path"] != w.path ||
			(id != postID && m["method"] != "GET") || m["client"] != "127.0.0.1" || m["user_agent"] != "e2e-agent" {
			t.Errorf("line %v, want %+v", m, w)
		}
		if w.code != "" && m["error"] != w.code {
			t.Errorf("line %v: error %v, want %s", m, m["error"], w.code)
		}
		if w.appNm != "" && (m["app"] != w.appNm || m["tenant"] != contoso) {
			t.Errorf("line %v: app %v of %v, want %s of %s", m, m["app"], m["tenant"], w.appNm, contoso)
		}
		if w.status == 200 && (m["connector"] != st.id || m["bytes_out"].(float64) <= 0) {
			t.Errorf("line %v: want connector %s and the bytes sent", m, st.id)
		}
		if _, ok := m["duration_ms"].(float64); !ok {
			t.Errorf("line %v has no duration", m)
		}
		if id == postID {
			if m["method"] != "POST" || m["proto"] != "HTTP/1.1" || m["bytes_in"] != 5000.0 || m["bytes_out"] != 5000.0 {
				t.Errorf("upload line %v: want POST over HTTP/1.1 with 5000 bytes each way", m)
			}
		} else if m["proto"] != "HTTP/2.0" {
			t.Errorf("line %v: want HTTP/2.0", m)
		}
	}
	raw, _ := os.ReadFile(logPath)
	if strings.Contains(string(raw), "hunter2") {
		t.Error("the access log holds a query string")
	}
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("access log mode: %v %v, want 0600", fi.Mode().Perm(), err)
	}

	// Rotation: move the file, SIGHUP, and the next line goes to a new one.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	c.serve.signal(syscall.SIGHUP)
	ok := eventually(readyTimeout, func() bool {
		_, err := os.Stat(logPath)
		return err == nil
	})
	if !ok {
		t.Fatal("no new access log after SIGHUP")
	}
	if resp, _ := c.get(t, web.ExternalHost, "/page"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after SIGHUP: %d", resp.StatusCode)
	}
	lines(logPath, 1)
	if c.serve.exited() {
		t.Fatalf("cloud serve exited on SIGHUP:\n%s", tail(c.serve.out.String(), 20))
	}

	// A path that cannot be opened.
	c.admin.refused(t, "", []string{"cloud", "serve", "--data-dir", c.dataDir, "--listen", "127.0.0.1:0",
		"--access-log", filepath.Join(t.TempDir(), "missing", "access.log")},
		"The access log", "cannot be opened", "--access-log")
}
