//go:build unix

package store

import (
	"os"
	"syscall"
)

// releaseFile drops the lock bbolt took on f and closes it, after bbolt
// panicked while opening. Closing alone is not enough: bbolt's memory
// mapping keeps the open file description, and with it the lock, alive.
func releaseFile(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
