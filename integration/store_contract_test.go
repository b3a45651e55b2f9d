package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"example.com/shop/integration/harness"
)

// TestStoreContractsOnPostgreSQL runs the order and payment services' store contract tests,
// which `make test` runs on SQLite, against the stack's real PostgreSQL: the same suite on
// both backends. Each store test works in a schema of its own, in a database of its own here.
func TestStoreContractsOnPostgreSQL(t *testing.T) {
	pg := containerFor(t, shop.Postgres, "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if code, out, err := pg.Exec(ctx, []string{"psql", "-U", "shop", "-d", "orders", "-c", "CREATE DATABASE contract"}); err != nil || code != 0 {
		b, _ := readAll(out)
		t.Fatalf("creating the contract database: exit %d, %v: %s", code, err, b)
	}
	dsn, err := shop.Postgres.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	dsn = strings.Replace(dsn, "/orders?", "/contract?", 1)

	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "./order/internal/store/", "./payment/internal/store/")
	cmd.Dir = harness.RepoRoot()
	cmd.Env = append(os.Environ(), "SHOP_TEST_POSTGRES_DSN="+dsn)
	out, err := cmd.CombinedOutput()
	t.Logf("store contract tests on PostgreSQL:\n%s", out)
	if err != nil {
		t.Fatalf("store contract tests failed on PostgreSQL: %v", err)
	}
}
