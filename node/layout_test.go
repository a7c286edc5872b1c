package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/signpost-federation/signpost"

// TestCoreImportsNoOtherPart is the layout's boundary, checked by the
// compiler's own dependency list: the core (package node) reaches the wasm
// module, the locator and the federation only through its ports, so none
// of them, nor the adapters and the assembly that bind them
// (node/adapter, node/stack), may be among its dependencies. Within the
// module it may import only node/port and node/internal/...; the ports
// import nothing of the module at all.
func TestCoreImportsNoOtherPart(t *testing.T) {
	for pkg, allowed := range map[string]func(string) bool{
		"./": func(p string) bool {
			return p == module+"/node" || p == module+"/node/port" || strings.HasPrefix(p, module+"/node/internal/")
		},
		"./port": func(p string) bool { return p == module+"/node/port" },
	} {
		for _, dep := range goListDeps(t, pkg) {
			if (dep == module || strings.HasPrefix(dep, module+"/")) && !allowed(dep) {
				t.Errorf("go list -deps %s shows %s: the core must reach it through a port (see doc.go)", pkg, dep)
			}
		}
	}
}

// goListDeps returns the import paths `go list -deps` prints for pkg.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); os.Getenv("GOROOT") == "" || err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to list dependencies with: %v", err)
		}
	}
	out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps %s printed %q", pkg, out)
	}
	return deps
}
