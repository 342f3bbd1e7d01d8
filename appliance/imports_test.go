package appliance_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hearth-home/hearth/"

// rank orders Hearth's packages: a package may import only packages of a
// lower rank. A new package must be placed here.
var rank = map[string]int{
	"appliance/config":          0,
	"appliance/store":           0,
	"appliance/store/storetest": 0,
	"appliance/systemd":         0,
	"appliance/qrcode":          0,
	"appliance/metrics":         0,
	"appliance/relay":           0,
	"appliance/certs":           0,
	"appliance/discovery":       0,
	"appliance/tailnet":         0,
	"webui":                     0,
	"appliance/auth":            1,
	"appliance/hub":             2,
	"appliance/chat":            3,
	"appliance/voice":           3,
	"appliance/voice/voicetest": 3,
	"appliance/transfer":        3,
	"appliance/transfer/peer":   3,
	"appliance/web":             4,
	"appliance/admin":           4,
	"appliance/daemon":          5,
	"appliance/cli":             6,
	"appliance/proof":           6,
	"cmd/hearth":                7,
	"appliance":                 0,
}

// adapters may import no other Hearth package.
var adapters = []string{"appliance/config", "appliance/store", "appliance/systemd", "appliance/qrcode", "appliance/metrics",
	"appliance/relay", "appliance/certs", "appliance/discovery", "appliance/tailnet"}

// testClients are libraries any package's external tests may use as the
// other side of a connection.
var testClients = []string{"github.com/coder/websocket", "github.com/pion/webrtc/v4", "github.com/pion/turn/v4"}

// owner is the one package allowed to import each heavy library.
var owner = map[string]string{
	"go.etcd.io/bbolt":                 "appliance/store",
	"github.com/coreos/go-systemd/v22": "appliance/systemd",
	"github.com/BurntSushi/toml":       "appliance/config",
	"github.com/coder/websocket":       "appliance/hub",
	"rsc.io/qr":                        "appliance/qrcode",
	"github.com/pion/turn":             "appliance/relay",
	"github.com/caddyserver/certmagic": "appliance/certs",
	"tailscale.com":                    "appliance/tailnet",
	"github.com/grandcat/zeroconf":     "appliance/discovery",
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} | {{join .XTestImports " "}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		code, xtest, _ := strings.Cut(line, " | ")
		fields := strings.Fields(code)
		pkg := strings.TrimPrefix(fields[0], module)
		r, ok := rankOf(pkg)
		if !ok {
			t.Errorf("package %s has no place in the import rules; add it to rank in imports_test.go", pkg)
			continue
		}
		imports := fields[1:]
		for _, imp := range strings.Fields(xtest) {
			// External tests may drive a package with client libraries
			// (a WebSocket or WebRTC peer), and import the package itself.
			if !contains(testClients, imp) && imp != module+pkg {
				imports = append(imports, imp)
			}
		}
		tool := strings.Contains(pkg, "/internal/") // load generators act as clients
		for _, imp := range imports {
			if tool && contains(testClients, imp) {
				continue
			}
			for lib, own := range owner {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && pkg != own && !strings.HasPrefix(pkg, own+"/") {
					t.Errorf("%s imports %s; only %s may", pkg, imp, own)
				}
			}
			dep, internal := strings.CutPrefix(imp, module)
			if !internal || strings.HasPrefix(dep, pkg+"/") && strings.HasSuffix(dep, "test") {
				continue
			}
			if contains(adapters, pkg) {
				t.Errorf("adapter %s imports %s; adapters import no other Hearth package", pkg, dep)
			}
			if dr, ok := rankOf(dep); ok && dr >= r && !isTestHelperOf(dep, pkg) {
				t.Errorf("%s (rank %d) imports %s (rank %d); imports must flow toward store", pkg, r, dep, dr)
			}
		}
	}
}

// rankOf places a package: test helpers (store/storetest) share their
// parent's rank; load generators under a package's internal/ directory
// are tools at the top and may import anything.
func rankOf(pkg string) (int, bool) {
	if r, ok := rank[pkg]; ok {
		return r, true
	}
	if strings.Contains(pkg, "/internal/") {
		return 100, true
	}
	if i := strings.LastIndex(pkg, "/"); i > 0 && strings.HasSuffix(pkg, "test") {
		return rankOf(pkg[:i])
	}
	return 0, false
}

// isTestHelperOf allows a package's test helper (store/storetest) and the
// package it helps to import each other.
func isTestHelperOf(dep, pkg string) bool {
	return strings.HasPrefix(dep, pkg+"/") || strings.HasPrefix(pkg, dep+"/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
