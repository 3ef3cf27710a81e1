//go:build unix

package keys

import (
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, waiting for other holders.
func lock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }

func unlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// fileID identifies a file across renames (device and inode).
type fileID struct{ dev, ino uint64 }

func idOf(st os.FileInfo) fileID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(s.Dev), uint64(s.Ino)} //nolint:unconvert // widths differ by platform
	}
	return fileID{}
}
