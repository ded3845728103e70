// Package testenv decides what a test does when a component it needs from
// outside the repository (the Vault test server, curl, python3 with
// botocore, a shell) is missing.
//
// A plain `go test ./...` on a fresh clone runs the unit tests and skips
// the tests that need a missing component, with a message saying what to
// install. The README's test command (scripts/test.sh, which CI runs) sets
// KEYWARD_REQUIRE_INTEGRATION=1: then a missing component fails the test,
// so that CI can never silently lose a suite.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether missing components fail tests
// (KEYWARD_REQUIRE_INTEGRATION=1) rather than skip them.
func Required() bool { return os.Getenv("KEYWARD_REQUIRE_INTEGRATION") == "1" }

// Missing stops the test because what is not available: a failure when
// components are required, a skip otherwise. install says how to get it.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is required (KEYWARD_REQUIRE_INTEGRATION=1) but not available: %s", what, install)
	}
	t.Skipf("skipped: %s is not available (%s); scripts/test.sh runs everything and fails instead", what, install)
}

// Command returns the path of the named program, or stops the test (see
// Missing).
func Command(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, install)
	}
	return p
}

// PythonModule stops the test (see Missing) unless python3 can import
// module.
func PythonModule(t testing.TB, module, install string) {
	t.Helper()
	Command(t, "python3", install)
	if out, err := exec.Command("python3", "-c", "import "+module).CombinedOutput(); err != nil {
		_ = out
		Missing(t, "python3 module "+module, install)
	}
}
