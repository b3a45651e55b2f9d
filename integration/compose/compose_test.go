// Package compose checks docker-compose.yml: it brings the stack up with `make up` (Docker
// Compose, or Podman's podman-compose with the stand-in images through the same SHOP_*_IMAGE
// variables), logs in through Keycloak's login form, places an order and pays it through the
// gateway, and brings the stack down again.
package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"example.com/shop/integration/harness"
)

// composeCommand picks SHOP_COMPOSE, else Docker Compose, else podman-compose.
func composeCommand(t *testing.T) string {
	if c := os.Getenv("SHOP_COMPOSE"); c != "" {
		return c
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return "docker compose"
	}
	if _, err := exec.LookPath("podman-compose"); err == nil {
		return "podman-compose"
	}
	t.Fatal("neither `docker compose` nor podman-compose is available (set SHOP_COMPOSE)")
	return ""
}

func runMake(t *testing.T, ctx context.Context, compose string, target string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "make", target, "COMPOSE="+compose)
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
}

// waitOK polls url until it answers 200, and stops at once, with the culprit's last log
// lines, when a container of the project has exited with an error or restarted twice.
func waitOK(t *testing.T, ctx context.Context, project, url string) {
	t.Helper()
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if trouble := harness.ProjectTrouble(ctx, project); trouble != nil {
			t.Fatalf("waiting for %s: %v", url, trouble)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not answer 200 in time (last: %v)", url, err)
		case <-time.After(2 * time.Second):
		}
	}
}

// publishedPorts are the host ports docker-compose.yml publishes.
var publishedPorts = []int{8080, 8000, 8180}

// preflight refuses to start where the stack could not come up: the engine's container DNS
// missing, leftovers of earlier runs that cannot be removed, or a published port taken (a
// `make run` or `make up` still running).
func preflight(t *testing.T, ctx context.Context) {
	t.Helper()
	if removed, err := harness.RemoveLeftovers(ctx); err != nil {
		t.Fatal(err)
	} else if len(removed) > 0 {
		t.Logf("removed what earlier runs left: %s", strings.Join(removed, ", "))
	}
	for _, p := range publishedPorts {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			t.Fatalf("port %d, which docker-compose.yml publishes, is taken (a `make run` or `make up` still running?): %v", p, err)
		}
		ln.Close()
	}
	if err := harness.CheckContainerDNS(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestComposeStack(t *testing.T) {
	// A project name of this run's own: never an earlier run's network or volume, never
	// another clone's (compose would name the project after the folder, e.g. "main").
	project := harness.ComposeProject(uuid.NewString()[:8])
	compose := composeCommand(t) + " -p " + project
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	preflight(t, ctx)

	down := sync.OnceFunc(func() {
		runMake(t, context.Background(), compose, "down")
		// Whatever compose did not remove is removed here: podman-compose 1.0 leaves the
		// project's network behind on `down -v`.
		left, err := harness.RemoveOwn(context.Background())
		if err != nil {
			t.Errorf("after `make down`, removing what is left: %v", err)
		}
		if len(left) > 0 {
			t.Logf("`make down` left %s; removed", strings.Join(left, ", "))
		}
	})
	// Interrupted (Ctrl-C, a CI timeout), the project still comes down before the process goes.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			down()
			os.Exit(130)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			logs := exec.Command("sh", "-c", compose+" logs --tail 60")
			logs.Dir = harness.RepoRoot()
			out, _ := logs.CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		down()
	})
	runMake(t, ctx, compose, "up")

	const issuer = "http://localhost:8180/realms/shop"
	waitOK(t, ctx, project, issuer+"/.well-known/openid-configuration")
	waitOK(t, ctx, project, "http://localhost:8080/healthz")
	waitOK(t, ctx, project, "http://localhost:8000/readyz")

	s, err := harness.NewLoginSession(ctx, issuer, harness.APITester, harness.APITesterSecret, "http://localhost:8080/auth/callback")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login(ctx, harness.Alice.Name, harness.Alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(ctx, method, "http://localhost:8000"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("compose-%d", time.Now().UnixNano()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}

	var products []struct {
		ID string `json:"id"`
	}
	resp, err := http.Get("http://localhost:8000/api/public/products")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&products)
	resp.Body.Close()
	if len(products) == 0 {
		t.Fatal("empty catalog")
	}
	st, o := call(http.MethodPost, "/api/orders", `{"items":[{"productId":"`+products[0].ID+`","quantity":1}]}`)
	if st != http.StatusCreated {
		t.Fatalf("placing an order: %d %v", st, o)
	}
	id, _ := o["id"].(string)
	st, o = call(http.MethodPost, "/api/orders/"+id+"/pay",
		`{"card":{"number":"4242424242424242","expMonth":12,"expYear":2031,"cvc":"123","holder":"Compose Check"}}`)
	if st != http.StatusOK || o["status"] != "paid" {
		t.Fatalf("paying order %s: %d %v", id, st, o)
	}
}
