package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// checkDBPath says, in words an operator can act on, why the store file
// path cannot be used: its directory is missing, not a directory or not
// writable (bbolt creates the file and, on compaction, a sibling), or the
// path itself is a directory, not a regular file, or not writable. The
// message names the directory, not the path again (FieldError already
// carries it).
func checkDBPath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it or choose another path", dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("directory %s cannot be reached by this user: fix its permissions or choose another path", dir)
	case err != nil:
		return fmt.Errorf("directory %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory: choose a path inside a directory", dir)
	}
	if fi, err := os.Stat(path); err == nil {
		switch {
		case fi.IsDir():
			return fmt.Errorf("this is a directory, not a database file: name a file inside it (e.g. %s)", filepath.Join(path, DefaultDB))
		case !fi.Mode().IsRegular():
			return errors.New("not a regular file: choose a file path for the database")
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return errors.New("the file is not writable by this user: fix its owner or mode (it should be 0600, owned by the server's user)")
			}
			return err
		}
		f.Close()
		return nil
	}
	f, err := os.CreateTemp(dir, ".firstrender-check-*")
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("directory %s is not writable by this user: the database file cannot be created there; fix its permissions or choose another path", dir)
		}
		return fmt.Errorf("directory %s: cannot create a file: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

// LockError is the DB [FieldError]'s cause when another process held the
// database's file lock for the whole wait (store.Options.Timeout): most
// often the previous firstrender, still draining during a restart.
type LockError struct {
	Wait time.Duration // how long Open waited
	Err  error         // wraps store.ErrLocked
}

func (e *LockError) Error() string {
	return fmt.Sprintf("locked by another process for the whole %v wait (another firstrender running or still shutting down on it?): stop it, wait longer, or choose another path", e.Wait)
}

func (e *LockError) Unwrap() error { return e.Err }
