package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/tetratelabs/wazero"
)

// Every command that loads the module (signpost ident, node, demo, …) keeps
// wazero's compiled code on disk, so that only the first run after an
// install or upgrade pays the compilation (about 2.5 s; a cached load is
// about 0.2 s). [CommandCacheDir] is the one place that decides where.
//
// Entries never go stale: wazero files them under a subdirectory named by
// its own version, GOARCH and GOOS, keys each by the SHA-256 of the module's
// bytes (with its compile options and the CPU's features), and checks the
// version again in each entry's header. A rebuilt module or a new wazero
// therefore writes new entries beside the old ones and never reads them.

const (
	// CacheEnv is the environment variable that chooses the compilation
	// cache directory for every command, unless its -wasm-cache flag is
	// given. "off" compiles in memory.
	CacheEnv = "SIGNPOST_WASM_CACHE"
	// CacheOff, as the flag's or CacheEnv's value, turns the cache off.
	CacheOff = "off"
	// CacheFlag is the name of every command's flag, CacheFlagUsage its
	// help text.
	CacheFlag      = "wasm-cache"
	CacheFlagUsage = "`DIR` where compiled wasm code is kept across runs, or \"off\" to compile in memory each run\n" +
		"(default $" + CacheEnv + ", else signpost/wazero in the user cache directory)"
)

// DefaultCacheDir returns signpost/wazero under [os.UserCacheDir]
// ($XDG_CACHE_HOME or ~/.cache on Linux), or an error if the platform has
// no user cache directory (for instance no $HOME).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "signpost", "wazero"), nil
}

// CommandCacheDir returns the compilation cache directory a command uses,
// for [Config.CacheDir]: flagValue (its -wasm-cache flag) if not empty,
// else $SIGNPOST_WASM_CACHE if set, else [DefaultCacheDir]. "off" in either
// gives "", compilation in memory. The directory is created if missing and
// checked to be writable; if it cannot be used, CommandCacheDir writes a
// one-line warning to warn and returns "": a cache is an optimisation, and
// a read-only home or a CI job without $HOME must still run the command.
func CommandCacheDir(flagValue string, warn io.Writer) string {
	return commandCacheDir(flagValue, os.Getenv, warn)
}

func commandCacheDir(flagValue string, getenv func(string) string, warn io.Writer) string {
	dir, from := flagValue, "-"+CacheFlag
	if dir == "" {
		dir, from = getenv(CacheEnv), "$"+CacheEnv
	}
	if dir == CacheOff {
		return ""
	}
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			fmt.Fprintf(warn, "signpost: warning: no user cache directory (%v); compiling the wasm module in memory (set -%s or $%s to keep it)\n", err, CacheFlag, CacheEnv)
			return ""
		}
		from = "default"
	}
	if err := checkCacheDir(dir); err != nil {
		fmt.Fprintf(warn, "signpost: warning: wasm cache %s (%s) cannot be used: %v; compiling in memory\n", dir, from, err)
		return ""
	}
	return dir
}

// errNotWritable is checkCacheDir's error when a probe file cannot be made.
var errNotWritable = errors.New("not writable")

// checkCacheDir creates dir and the subdirectory wazero files this build's
// entries in, and checks that both accept a new file, as wazero's own
// writes (a temporary file renamed into place) need.
func checkCacheDir(dir string) error {
	c, err := wazero.NewCompilationCacheWithDir(dir) // creates dir and its versioned subdirectory
	if err != nil {
		return err
	}
	_ = c.Close(context.Background()) // no engine yet: nothing to release
	probe := []string{dir}
	if sub := filepath.Join(dir, wazeroSubdir()); isDir(sub) {
		probe = append(probe, sub)
	}
	for _, d := range probe {
		f, err := os.CreateTemp(d, ".probe-*")
		if err != nil {
			return fmt.Errorf("%w: %w", errNotWritable, err)
		}
		name := f.Name()
		f.Close()
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("%w: %w", errNotWritable, err)
		}
	}
	return nil
}

// wazeroSubdir is the name of the subdirectory wazero keeps this build's
// entries in: "wazero-" + its version as the build records it (as wazero's
// internal/version finds it) + "-" + GOARCH + "-" + GOOS. If a later wazero
// names it otherwise, checkCacheDir finds no such directory and probes only
// the top one.
func wazeroSubdir() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return "wazero-" + v + "-" + runtime.GOARCH + "-" + runtime.GOOS
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
