package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ca.key")

	steps := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"create", []byte("first secret\n"), 0o600},
		{"overwrite", []byte("second, longer secret\n"), 0o600},
		{"overwrite shorter with a new mode", []byte("3"), 0o640},
		{"empty", nil, 0o600},
	}
	for _, st := range steps {
		if err := WriteFileAtomic(path, st.data, st.perm); err != nil {
			t.Fatalf("%s: WriteFileAtomic: %v", st.name, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !bytes.Equal(got, st.data) {
			t.Errorf("%s: content %q, want %q", st.name, got, st.data)
		}
		if runtime.GOOS != "windows" {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != st.perm {
				t.Errorf("%s: mode %v, want %v", st.name, fi.Mode().Perm(), st.perm)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "ca.key" {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s: directory holds %v, want only ca.key", st.name, names)
		}
	}
}

func TestWriteFileAtomicFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	// Renaming over a directory fails; the temporary file must not stay.
	target := filepath.Join(dir, "adir")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("x"), 0o600); err == nil {
		t.Error("replacing a non-empty directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "adir" {
		t.Errorf("directory holds %d entries, want only adir", len(entries))
	}
	if err := WriteFileAtomic(dir+string(filepath.Separator), []byte("x"), 0o600); err == nil {
		t.Error("writing to a directory path succeeded")
	}
}

func TestWriteFileAtomicRelative(t *testing.T) {
	// Not parallel: changes the working directory.
	t.Chdir(t.TempDir())
	if err := WriteFileAtomic("rel.txt", []byte("ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile("rel.txt"); err != nil || string(got) != "ok" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
}
