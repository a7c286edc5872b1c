package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/signpost-federation/signpost/node"
)

// ErrUnsafePermissions means a secret file, or the data directory, may be
// read or changed by users other than the node's: the node refuses to start,
// as ssh refuses a private key others can read, naming the file and the fix.
// It is the core's error (the core checks the objection key it makes
// itself), so that callers branch on one value.
var ErrUnsafePermissions = node.ErrUnsafePermissions

// checkSecretFile refuses a secret (key) file that group or others may read
// or write. A missing file is left to whoever reads it to report.
func checkSecretFile(what, path string) error {
	if runtime.GOOS == "windows" || path == "" {
		return nil // no POSIX modes; ACLs are the operator's
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s %s is accessible by group or others (mode %04o); run: chmod 600 %s",
			ErrUnsafePermissions, what, path, perm, path)
	}
	return nil
}

// checkDataDir refuses a data directory, or a directory in it, that group or
// others may write (they could replace the node's databases and keys), and
// any file in it that group or others may write, or read unless it is
// public (publicFile): the node creates every other one 0600 (records hold
// NHS numbers, holder.key and the audit keys sign for the node, users.json
// holds password hashes).
func checkDataDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		switch {
		case d.IsDir() && perm&0o022 != 0:
			errs = append(errs, fmt.Errorf("%w: data directory %s is writable by group or others (mode %04o); run: chmod go-w %s",
				ErrUnsafePermissions, path, perm, path))
		case info.Mode().IsRegular() && perm&0o022 != 0,
			info.Mode().IsRegular() && perm&0o077 != 0 && !publicFile(path):
			errs = append(errs, fmt.Errorf("%w: %s in the data directory is accessible by group or others (mode %04o); run: chmod 600 %s",
				ErrUnsafePermissions, path, perm, path))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: data dir: %w", err)
	}
	return errors.Join(errs...)
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// publicFile reports whether a file of the data directory is public by
// design, and so may be world-readable: a public key (*.pub, such as the
// audit log's) or the federation's cache of signed descriptors. Anything
// else is treated as secret.
func publicFile(path string) bool {
	return filepath.Ext(path) == ".pub" || filepath.Base(path) == "descriptors.pem"
}
