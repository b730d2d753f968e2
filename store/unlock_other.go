//go:build !unix

package store

import "os"

// releaseFile closes f after bbolt panicked while opening it.
func releaseFile(f *os.File) { f.Close() }
