//go:build unix

package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// childOpen opens path read-write and read-only and reports, per mode,
// "permission" when the error matches fs.ErrPermission and names the
// path, or the error otherwise.
func childOpen(path string) int {
	for _, ro := range []bool{false, true} {
		s, err := Open(path, Options{ReadOnly: ro})
		switch {
		case err == nil:
			s.Close()
			fmt.Println("opened")
		case errors.Is(err, fs.ErrPermission) && strings.Contains(err.Error(), path):
			fmt.Println("permission")
		default:
			fmt.Println("error:", err)
		}
	}
	return 0
}

// TestOpen_NoPermission opens a store file the process may not read. As
// root, where file modes do not apply, the test binary is re-executed as
// the unprivileged user nobody.
func TestOpen_NoPermission(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "store-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "private.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	if os.Geteuid() != 0 {
		os.Chmod(path, 0)
		for _, ro := range []bool{false, true} {
			_, err := Open(path, Options{ReadOnly: ro})
			if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open(ReadOnly=%v) of an unreadable file = %v, want fs.ErrPermission naming the path", ro, err)
			}
		}
		return
	}

	// Root: copy the test binary where nobody can run it, and run it as nobody.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "store.test")
	copyFile(t, exe, bin)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=open", "FIRSTRENDER_STORE_PATH="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		// The copy could not be started at all (say, a noexec /tmp).
		t.Skipf("cannot run the test binary as nobody here: %v", err)
	}
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	want := "permission\npermission\n"
	if string(out) != want {
		t.Errorf("Open as another user of a 0600 file (read-write, read-only) said %q, want %q", out, want)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
