package integration

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"example.com/shop/integration/harness"
)

// shop is the system under test, shared by every test of the suite: the start-up cost is
// paid once, and tests keep out of each other's way by working on their own orders.
var shop *harness.Stack

// TestMain starts the whole stack in containers (service images from their Dockerfiles,
// binaries from `make build`), runs the tests, and on failure writes every container's log
// into the test output and integration/artifacts/logs/. Everything is removed at the end,
// also when the start fails.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	if os.Getenv("SHOP_E2E_STACK") == "local" {
		shop = harness.LocalStack()
		return m.Run()
	}
	// An interrupted run (Ctrl-C, a CI timeout's SIGTERM) removes what it created before it
	// goes: the deferred Close below would not run.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		got := <-sig
		fmt.Fprintf(os.Stderr, "%s: removing the stack's containers and networks\n", got)
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		removed, err := harness.RemoveOwn(cctx)
		fmt.Fprintf(os.Stderr, "removed %d (%v)\n", len(removed), err)
		os.Exit(130)
	}()
	started := time.Now()
	s, err := harness.StartStack(ctx)
	shop = s
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		s.Close(cctx)
	}()
	logs := filepath.Join(harness.RepoRoot(), "integration", "artifacts", "logs")
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the stack failed after %s: %v\n", time.Since(started).Round(time.Second), err)
		s.DumpLogs(ctx, logs, os.Stderr)
		fmt.Fprintln(os.Stderr, "Hints: `make build` must have run (the images copy bin/*); without Docker Hub access, build the stand-in images with .ci/images.sh and `source .cache/images.env`.")
		return 1
	}
	fmt.Printf("stack ready in %s: webapp %s, gateway %s, keycloak %s\n",
		time.Since(started).Round(time.Second), s.WebappURL, s.GatewayURL, s.KeycloakURL)
	code := m.Run()
	if code != 0 {
		s.DumpLogs(ctx, logs, os.Stdout)
	}
	return code
}
