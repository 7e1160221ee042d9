package datadir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPassword = "correct horse battery"

func TestInitRefusesExistingDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o600)
	_, err := Init(context.Background(), InitOptions{DataDir: dir, Name: "sallyport.test", Tenant: "contoso.com", Admin: "admin@contoso.com"})
	if err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep")); string(b) != "x" {
		t.Error("init touched an existing file")
	}
}

func TestInitFileModes(t *testing.T) {
	dir := initDataDir(t, "")
	for _, f := range []string{CAKeyFile, SettingsFile, StoreFile, KEKFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %o, want 600", f, fi.Mode().Perm())
		}
	}
}
