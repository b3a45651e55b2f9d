package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/modules/redis"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Stack is the whole shop in containers on one network: PostgreSQL, Redis, Keycloak, and
// the order, payment, gateway and webapp services built from their Dockerfiles.
//
// The issuer problem: the browser (on the host) and the services (on the container network)
// reach Keycloak by different URLs, yet tokens must carry one issuer. Keycloak is given its
// public URL as KC_HOSTNAME (a fixed port on the host, http://localhost:<port>) with a
// dynamic back channel, so every token says iss=http://localhost:<port>/realms/shop; the
// services require exactly that issuer but fetch discovery and keys from
// http://keycloak:8080 (OIDC_DISCOVERY_URL). The same arrangement serves docker-compose.
type Stack struct {
	Network  *testcontainers.DockerNetwork
	Postgres *postgres.PostgresContainer
	Redis    *redis.RedisContainer
	Keycloak *Keycloak
	Order    testcontainers.Container
	Payment  testcontainers.Container
	Gateway  testcontainers.Container
	Webapp   testcontainers.Container

	// KeycloakURL and WebappURL are the public URLs (fixed host ports), GatewayURL the
	// gateway's published port.
	KeycloakURL, WebappURL, GatewayURL string
	// PaymentInternal is the host address (host:port) of payment's mTLS listener.
	PaymentInternal string
	// PKI is the stack's own internal CA and the services' certificates.
	PKI *PKI

	mu         sync.Mutex
	containers []named
}

type named struct {
	name string
	c    testcontainers.Container
}

// Database credentials of the test stack (test-only values).
const (
	dbUser     = "shop"
	dbPassword = "shop-e2e"
)

// Issuer is the realm's public issuer.
func (s *Stack) Issuer() string { return s.KeycloakURL + "/realms/shop" }

func (s *Stack) track(name string, c testcontainers.Container) {
	if c == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers = append(s.containers, named{name, c})
}

// StartStack starts everything and waits until each part is ready. On error, the parts
// that did start are still in the Stack: call Close (and DumpLogs) anyway.
func StartStack(ctx context.Context) (*Stack, error) {
	s := &Stack{}
	// Fail fast where the stack could not work, instead of waiting minutes for services that
	// die at start; and never reuse what a killed run left (a network without DNS, once).
	if removed, err := RemoveLeftovers(ctx); err != nil {
		return s, err
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "removed what earlier runs left: %s\n", strings.Join(removed, ", "))
	}
	if err := CheckContainerDNS(ctx); err != nil {
		return s, err
	}
	nw, err := network.New(ctx, network.WithLabels(ownLabels()))
	if err != nil {
		return s, fmt.Errorf("network: %w", err)
	}
	s.Network = nw
	if s.PKI, err = NewPKI(); err != nil {
		return s, err
	}
	kcPort, webPort := freePort(), freePort()
	s.KeycloakURL = "http://localhost:" + strconv.Itoa(kcPort)
	s.WebappURL = "http://localhost:" + strconv.Itoa(webPort)
	internalIssuer := "http://keycloak:8080/realms/shop"

	// Infrastructure and the service images, in parallel: Keycloak's start dominates.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Go(func() {
		pg, err := postgres.Run(ctx, PostgresImage,
			postgres.WithDatabase("orders"), postgres.WithUsername(dbUser), postgres.WithPassword(dbPassword),
			postgres.WithInitScripts(filepath.Join(RepoRoot(), "integration", "testdata", "init-databases.sql")),
			postgres.BasicWaitStrategies(), testcontainers.WithLabels(ownLabels()),
			network.WithNetwork([]string{"postgres"}, nw))
		s.Postgres = pg
		if pg != nil {
			s.track("postgres", pg)
		}
		errs <- wrap("postgres", err)
	})
	wg.Go(func() {
		rd, err := redis.Run(ctx, RedisImage, testcontainers.WithLabels(ownLabels()), network.WithNetwork([]string{"redis"}, nw))
		s.Redis = rd
		if rd != nil {
			s.track("redis", rd)
		}
		errs <- wrap("redis", err)
	})
	wg.Go(func() {
		c, err := startKeycloak(ctx, nw, kcPort, map[string]string{
			"KC_HOSTNAME":                     s.KeycloakURL,
			"KC_HOSTNAME_BACKCHANNEL_DYNAMIC": "true",
			"SHOP_WEBAPP_URL":                 s.WebappURL,
			"SHOP_WEBAPP_BACKCHANNEL_URL":     "http://webapp:8080",
		})
		if c != nil {
			s.Keycloak = &Keycloak{Container: c, URL: s.KeycloakURL}
			s.track("keycloak", c)
		}
		errs <- wrap("keycloak", err)
	})
	wg.Wait()
	close(errs)
	if err = joinErrs(errs); err != nil {
		return s, err
	}

	oidc := map[string]string{
		"OIDC_ISSUER":        s.Issuer(),
		"OIDC_DISCOVERY_URL": internalIssuer,
		"OIDC_AUDIENCE":      "shop-api",
	}
	dsn := func(db string) string {
		return fmt.Sprintf("host=postgres port=5432 user=%s password=%s dbname=%s sslmode=disable", dbUser, dbPassword, db)
	}
	errs = make(chan error, 2)
	wg.Go(func() {
		c, err := startService(ctx, nw, "order", 8081, 0, merge(oidc, map[string]string{
			"ORDER_DB_DRIVER": "postgres", "ORDER_DB_DSN": dsn("orders"), "ORDER_PAYMENT_URL": "http://payment:8082",
			"ORDER_TLS_CA": "/certs/ca.pem", "ORDER_TLS_CERT": "/certs/order-service.pem", "ORDER_TLS_KEY": "/certs/order-service-key.pem",
			"ORDER_CLIENT_SECRET": OrderServiceSecret, "ORDER_PAYMENT_INTERNAL_URL": "https://payment:8443",
			"ORDER_PAYMENT_HOLD": PaymentHold.String(), "ORDER_EXPIRY_INTERVAL": ExpiryInterval.String(),
		}), s.PKI.Files("order-service")...)
		s.Order = c
		s.track("order", c)
		errs <- err
	})
	wg.Go(func() {
		c, err := startService(ctx, nw, "payment", 8082, 0, merge(oidc, map[string]string{
			"PAYMENT_DB_DRIVER": "postgres", "PAYMENT_DB_DSN": dsn("payments"), "PAYMENT_ORDER_URL": "http://order:8081",
			"PAYMENT_TLS_CA": "/certs/ca.pem", "PAYMENT_TLS_CERT": "/certs/payment-service.pem", "PAYMENT_TLS_KEY": "/certs/payment-service-key.pem",
			"PAYMENT_CLIENT_SECRET": PaymentServiceSecret, "PAYMENT_ORDER_INTERNAL_URL": "https://order:8444",
		}), append(s.PKI.Files("payment-service"), testcontainers.WithExposedPorts("8443/tcp"))...)
		s.Payment = c
		s.track("payment", c)
		errs <- err
	})
	wg.Wait()
	close(errs)
	if err = joinErrs(errs); err != nil {
		return s, err
	}
	if s.PaymentInternal, err = endpoint(ctx, s.Payment, "8443/tcp"); err != nil {
		return s, err
	}
	s.PaymentInternal = strings.TrimPrefix(s.PaymentInternal, "http://")

	s.Gateway, err = startService(ctx, nw, "gateway", 8000, 0, merge(oidc, map[string]string{
		"GATEWAY_ORDER_URL": "http://order:8081", "GATEWAY_PAYMENT_URL": "http://payment:8082",
		"GATEWAY_REDIS_URL": "redis://redis:6379/0",
	}))
	s.track("gateway", s.Gateway)
	if err != nil {
		return s, err
	}
	if s.GatewayURL, err = endpoint(ctx, s.Gateway, "8000/tcp"); err != nil {
		return s, err
	}

	s.Webapp, err = startService(ctx, nw, "webapp", 8080, webPort, merge(oidc, map[string]string{
		"WEBAPP_PUBLIC_URL": s.WebappURL, "WEBAPP_GATEWAY_URL": "http://gateway:8000",
		"WEBAPP_REDIS_URL": "redis://redis:6379/1",
	}))
	s.track("webapp", s.Webapp)
	if err != nil {
		return s, err
	}
	// Each service answers /readyz, but the first request through the whole path (webapp
	// -> gateway -> order -> PostgreSQL) pays for cold connections; the stack is ready for
	// tests when that path serves the catalog.
	return s, waitFor(ctx, 2*time.Minute, s.GatewayURL+"/api/public/products", s.WebappURL+"/")
}

// waitFor polls each URL until it answers 200, within d in all.
func waitFor(ctx context.Context, d time.Duration, urls ...string) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	for _, u := range urls {
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not serving: %v", u, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

func startKeycloak(ctx context.Context, nw *testcontainers.DockerNetwork, hostPort int, env map[string]string) (testcontainers.Container, error) {
	env = merge(map[string]string{
		"KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
		"KC_BOOTSTRAP_ADMIN_PASSWORD": "admin",
		"KC_HEALTH_ENABLED":           "true",
	}, env)
	return testcontainers.Run(ctx, KeycloakImage,
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts("8080/tcp", "9000/tcp"),
		fixedPort("8080/tcp", hostPort),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			HostFilePath:      filepath.Join(RepoRoot(), "keycloak", "realm", "shop-realm.json"),
			ContainerFilePath: "/opt/keycloak/data/import/shop-realm.json",
			FileMode:          0o644,
		}, testcontainers.ContainerFile{
			// The realm's login theme, as a folder (start-dev reads themes/ uncached).
			// Directories need the execute bit, and the mode applies to every entry.
			HostFilePath:      filepath.Join(RepoRoot(), "keycloak", "themes", "shop"),
			ContainerFilePath: "/opt/keycloak/themes/shop",
			FileMode:          0o755,
		}),
		testcontainers.WithCmd("start-dev", "--import-realm"),
		testcontainers.WithLabels(ownLabels()),
		network.WithNetwork([]string{"keycloak"}, nw),
		// WithWaitStrategy alone caps the wait at 60 s; Keycloak on a busy 2-core machine
		// can take longer.
		testcontainers.WithWaitStrategyAndDeadline(4*time.Minute, wait.ForHTTP("/health/ready").WithPort("9000/tcp").
			WithStartupTimeout(4*time.Minute).WithPollInterval(time.Second)),
	)
}

// startService builds the service's image from its Dockerfile (binaries from `make build`)
// and starts it, ready when /readyz answers 200.
func startService(ctx context.Context, nw *testcontainers.DockerNetwork, name string, port, hostPort int, env map[string]string, more ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
	p := strconv.Itoa(port) + "/tcp"
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithDockerfile(testcontainers.FromDockerfile{
			Context: RepoRoot(), Dockerfile: name + "/Dockerfile", Repo: "shop-e2e/" + name, Tag: "latest", KeepImage: true,
		}),
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts(p),
		testcontainers.WithLabels(ownLabels()),
		network.WithNetwork([]string{name}, nw),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute, wait.ForHTTP("/readyz").WithPort(p).WithStartupTimeout(2*time.Minute)),
	}
	if hostPort != 0 {
		opts = append(opts, fixedPort(p, hostPort))
	}
	opts = append(opts, more...)
	c, err := testcontainers.Run(ctx, "", opts...)
	return c, wrap(name, err)
}

// fixedPort publishes a container port on a chosen host port, for the URLs that must be
// known before the container starts (Keycloak's issuer, the webapp's redirect URI).
func fixedPort(port string, hostPort int) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PortBindings = mobynet.PortMap{mobynet.MustParsePort(port): {{HostPort: strconv.Itoa(hostPort)}}}
	})
}

// endpoint is the host URL of a published port.
func endpoint(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	host, err := c.Host(ctx)
	if err != nil {
		return "", err
	}
	mp, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("http://%s:%s", host, mp.Port()), nil
}

// freePort asks the kernel for a free port on loopback.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Close removes every container and the network, and anything else this process created.
func (s *Stack) Close(ctx context.Context) {
	s.mu.Lock()
	cs := append([]named(nil), s.containers...)
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		_ = cs[i].c.Terminate(ctx)
	}
	if s.Network != nil {
		_ = s.Network.Remove(ctx)
	}
	if !s.Local() {
		if _, err := RemoveOwn(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "removing the stack's containers and networks: %v\n", err)
		}
	}
	if s.PKI != nil {
		_ = os.RemoveAll(s.PKI.Dir)
	}
}

// DumpLogs writes every container's log into dir (one file each) and the tail of each to w.
func (s *Stack) DumpLogs(ctx context.Context, dir string, w io.Writer) {
	_ = os.MkdirAll(dir, 0o755)
	s.mu.Lock()
	cs := append([]named(nil), s.containers...)
	s.mu.Unlock()
	for _, n := range cs {
		rc, err := n.c.Logs(ctx)
		if err != nil {
			fmt.Fprintf(w, "logs of %s: %v\n", n.name, err)
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		_ = os.WriteFile(filepath.Join(dir, n.name+".log"), b, 0o644)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		fmt.Fprintf(w, "----- %s log (tail; full log in %s) -----\n%s\n", n.name, filepath.Join(dir, n.name+".log"), b)
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

func joinErrs(c <-chan error) error {
	var all []error
	for err := range c {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// LocalStack describes the shop that `make run` runs on this machine, so the browser
// scenarios can be run against it while developing (SHOP_E2E_STACK=local). Scenarios that
// stop or restart containers need the container stack and fail on this one.
func LocalStack() *Stack {
	return &Stack{
		KeycloakURL: "http://localhost:8180",
		WebappURL:   "http://localhost:8080",
		GatewayURL:  "http://localhost:8000",
		Keycloak:    &Keycloak{URL: "http://localhost:8180"},
	}
}

// Local reports whether s is the `make run` stack rather than containers.
func (s *Stack) Local() bool { return s.Network == nil }
