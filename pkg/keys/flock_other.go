//go:build !unix

package keys

import "os"

// lock is a no-op where flock is unavailable: one writer process per file.
func lock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }

type fileID struct{}

func idOf(os.FileInfo) fileID { return fileID{} }
