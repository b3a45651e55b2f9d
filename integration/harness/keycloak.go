package harness

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Keycloak is a running Keycloak container with the shop realm imported.
type Keycloak struct {
	Container testcontainers.Container
	// URL is Keycloak's base URL as the test process reaches it (published port on loopback).
	URL string
}

// Issuer is the realm's issuer as seen from the test process. Keycloak runs without a fixed
// hostname here, so tokens name the URL they were requested through.
func (k *Keycloak) Issuer() string { return k.URL + "/realms/shop" }

// KeycloakOptions tune the container.
type KeycloakOptions struct {
	// Env is added to the container's environment (realm placeholders, e.g. SHOP_WEBAPP_URL).
	Env map[string]string
	// Customize adds testcontainers options, e.g. network.WithNetwork for a shared stack.
	Customize []testcontainers.ContainerCustomizer
}

// StartKeycloak starts Keycloak in dev mode with keycloak/realm/shop-realm.json imported and
// waits until the realm's discovery document answers. The container is removed when the
// test ends; its log is attached to the test output if the test failed.
func StartKeycloak(ctx context.Context, t testing.TB, o KeycloakOptions) *Keycloak {
	t.Helper()
	env := map[string]string{
		"KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
		"KC_BOOTSTRAP_ADMIN_PASSWORD": "admin",
		"KC_HEALTH_ENABLED":           "true",
	}
	for k, v := range o.Env {
		env[k] = v
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts("8080/tcp"),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			HostFilePath:      filepath.Join(RepoRoot(), "keycloak", "realm", "shop-realm.json"),
			ContainerFilePath: "/opt/keycloak/data/import/shop-realm.json",
			FileMode:          0o644,
		}),
		testcontainers.WithCmd("start-dev", "--import-realm"),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/realms/shop/.well-known/openid-configuration").
			WithPort("8080/tcp").WithStartupTimeout(4 * time.Minute).WithPollInterval(time.Second)),
	}
	opts = append(opts, o.Customize...)
	c, err := testcontainers.Run(ctx, KeycloakImage, opts...)
	Cleanup(t, "keycloak", c)
	if err != nil {
		t.Fatalf("starting Keycloak from image %s: %v\n(set SHOP_KEYCLOAK_IMAGE; without Docker Hub access build the stand-in with .ci/images.sh)", KeycloakImage, err)
	}
	host, err := c.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := c.MappedPort(ctx, "8080/tcp")
	if err != nil {
		t.Fatal(err)
	}
	return &Keycloak{Container: c, URL: fmt.Sprintf("http://%s:%s", host, port.Port())}
}

// Cleanup removes c when the test ends, first copying its log into the test output if the
// test failed, so a red CI run shows what the container said.
func Cleanup(t testing.TB, name string, c testcontainers.Container) {
	t.Helper()
	if c == nil {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			DumpLogs(ctx, t, name, c)
		}
		if err := c.Terminate(ctx); err != nil {
			t.Logf("removing %s: %v", name, err)
		}
	})
}

// DumpLogs writes the tail of c's log into the test output.
func DumpLogs(ctx context.Context, t testing.TB, name string, c testcontainers.Container) {
	rc, err := c.Logs(ctx)
	if err != nil {
		t.Logf("logs of %s: %v", name, err)
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	const max = 20000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	t.Logf("----- %s log (tail) -----\n%s\n----- end of %s log -----", name, b, name)
}
