package azblob_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestDriverInternals runs the azblob package's white-box tests (they reach
// into the driver's lease clock and snapshots) against an Azurite of their
// own. They live beside the driver and take the server from the
// environment, so that the package's tests import no Docker harness; this
// test is what runs them, and it fails if any of them skipped.
func TestDriverInternals(t *testing.T) {
	_, ep := testenv.Azurite(t)
	a := testenv.AzuriteDevAccount
	cmd := exec.Command("go", "test", "-race", "-count=1", "-v", "-run", "^(TestCreateContainerOnce|TestListPages|TestLeaseSameToken|TestLeaseClock|TestLeaseLostAnswer)$", "./azblob")
	cmd.Dir = filepath.Join("..", "..", "..") // the root module
	cmd.Env = append(os.Environ(), "CERTCACHE_TEST_AZURITE="+ep+" "+a.Name+" "+a.Key)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("go test azblob: %v", err)
	}
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Error("a white-box test skipped")
	}
	if n := len(regexp.MustCompile(`(?m)^--- PASS: Test`).FindAll(out, -1)); n != 5 {
		t.Errorf("%d white-box tests passed, want 5", n)
	}
}
