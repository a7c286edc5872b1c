package wasm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// isolateUserCache points the user cache directory at a new temporary
// directory, so that no test writes into the real one, and returns it.
func isolateUserCache(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	return filepath.Join(home, "cache")
}

func TestCommandCacheDirChoice(t *testing.T) {
	userCache := isolateUserCache(t)
	other := t.TempDir()
	tests := []struct {
		name      string
		flag, env string
		want      string
	}{
		{"default: the user cache directory", "", "", filepath.Join(userCache, "signpost", "wazero")},
		{"environment variable", "", filepath.Join(other, "env"), filepath.Join(other, "env")},
		{"flag", filepath.Join(other, "flag"), "", filepath.Join(other, "flag")},
		{"flag beats environment variable", filepath.Join(other, "flag"), filepath.Join(other, "env"), filepath.Join(other, "flag")},
		{"flag off", "off", filepath.Join(other, "env"), ""},
		{"environment variable off", "", "off", ""},
		{"flag beats environment variable off", filepath.Join(other, "flag"), "off", filepath.Join(other, "flag")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(CacheEnv, tt.env)
			var warn bytes.Buffer
			got := CommandCacheDir(tt.flag, &warn)
			if got != tt.want || warn.Len() != 0 {
				t.Fatalf("CommandCacheDir(%q) with $%s=%q = %q, warning %q; want %q, none", tt.flag, CacheEnv, tt.env, got, warn.String(), tt.want)
			}
			if got != "" && !isDir(filepath.Join(got, wazeroSubdir())) {
				t.Errorf("%s has no %s subdirectory", got, wazeroSubdir())
			}
		})
	}
}

func TestCommandCacheDirFallsBackWithAWarning(t *testing.T) {
	isolateUserCache(t)
	t.Setenv(CacheEnv, "")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) (flag string)
	}{
		{"directory under a file", func(*testing.T) string { return filepath.Join(file, "cache") }},
		{"directory is a file", func(*testing.T) string { return file }},
		{"no user cache directory (no HOME, as in some CI jobs)", func(t *testing.T) string {
			t.Setenv("HOME", "")
			t.Setenv("XDG_CACHE_HOME", "")
			return ""
		}},
		{"read-only directory", func(t *testing.T) string {
			if os.Geteuid() == 0 {
				t.Skip("root writes into read-only directories")
			}
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			return dir
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flag := tt.setup(t)
			var warn bytes.Buffer
			if got := CommandCacheDir(flag, &warn); got != "" {
				t.Fatalf("CommandCacheDir(%q) = %q, want \"\" (in memory)", flag, got)
			}
			w := warn.String()
			if !strings.HasPrefix(w, "signpost: warning: ") || strings.Count(w, "\n") != 1 || !strings.HasSuffix(w, "\n") || !strings.Contains(w, "in memory") {
				t.Errorf("warning %q: want one line, starting \"signpost: warning: \", saying it compiles in memory", w)
			}
			// The command still works, with the warning on stderr.
			var args []string
			if flag != "" {
				args = []string{"--" + CacheFlag, flag}
			}
			var out, errb bytes.Buffer
			code := IdentMain(context.Background(), append(append([]string{"validate"}, args...), "9990000018"), strings.NewReader(""), &out, &errb)
			if code != 0 || out.String() != "valid\t999 000 0018\n" || errb.String() != w {
				t.Errorf("ident validate: exit %d, stdout %q, stderr %q; want 0, the result, the warning", code, out.String(), errb.String())
			}
		})
	}
}

// cacheEntries lists the compiled-code entries under dir with their
// modification times.
func cacheEntries(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	sub := filepath.Join(dir, wazeroSubdir())
	ents, err := os.ReadDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Join(sub, e.Name())] = info.ModTime()
	}
	return out
}

// TestCompilationCacheIsUsedOnSecondLoad: the first runtime writes the
// compiled module into the directory; the second reads it instead of
// compiling (it writes nothing, and damaged entries make it fail, which a
// fresh compilation would not notice).
func TestCompilationCacheIsUsedOnSecondLoad(t *testing.T) {
	isolateUserCache(t)
	dir := filepath.Join(t.TempDir(), "cache")
	ctx := context.Background()
	validate := func() error {
		r, err := New(ctx, Config{Instances: 1, CacheDir: dir, CompileOnUse: true})
		if err != nil {
			return err
		}
		defer r.Close(ctx)
		res, err := r.Validate(ctx, "nhs", "9990000018")
		if err == nil && !res.Valid {
			t.Fatalf("%+v", res)
		}
		return err
	}
	if err := validate(); err != nil {
		t.Fatal(err)
	}
	first := cacheEntries(t, dir)
	if len(first) != 1 {
		t.Fatalf("%d cache entries after one validation pool, want 1: %v", len(first), first)
	}
	if err := validate(); err != nil {
		t.Fatal(err)
	}
	second := cacheEntries(t, dir)
	if len(second) != len(first) {
		t.Fatalf("second load wrote entries: %v, then %v", first, second)
	}
	for name, mod := range first {
		if !second[name].Equal(mod) {
			t.Errorf("second load rewrote %s", name)
		}
		if err := os.WriteFile(name, []byte("not compiled code"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := validate(); err == nil {
		t.Fatal("a runtime loaded over damaged cache entries: it did not read them")
	}
}

// TestCompileOnUse: with CompileOnUse, New compiles nothing, validation
// compiles only the validation pool, and a token operation the main one.
func TestCompileOnUse(t *testing.T) {
	ctx := context.Background()
	r := newTestRuntime(t, Config{Instances: 1, CompileOnUse: true})
	pools := func() (main, quick bool) {
		r.mainMu.Lock()
		defer r.mainMu.Unlock()
		r.quickMu.Lock()
		defer r.quickMu.Unlock()
		return r.main != nil, r.quick != nil
	}
	if m, q := pools(); m || q {
		t.Fatalf("after New: main %v, validation %v; want neither", m, q)
	}
	if _, err := r.Validate(ctx, "nhs", "9990000018"); err != nil {
		t.Fatal(err)
	}
	if m, q := pools(); m || !q {
		t.Fatalf("after Validate: main %v, validation %v; want only validation", m, q)
	}
	if _, err := r.Blind(ctx, "nhs", []string{"9990000018"}); err != nil {
		t.Fatal(err)
	}
	if m, q := pools(); !m || !q {
		t.Fatalf("after Blind: main %v, validation %v; want both", m, q)
	}
}

// TestPoolCompilationDoesNotBlockTheOtherPool: while the validation pool is
// being compiled (its lock held, as during a cold compile of seconds), token
// calls on the main pool go on. Before each pool had its own lock, this
// test deadlocked (the run's -timeout reports it).
func TestPoolCompilationDoesNotBlockTheOtherPool(t *testing.T) {
	ctx := context.Background()
	r := newTestRuntime(t, Config{Instances: 1})
	r.quickMu.Lock()
	done := make(chan error, 1)
	go func() {
		_, err := r.Blind(ctx, "nhs", []string{"9990000018"})
		done <- err
	}()
	err := <-done
	r.quickMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}
