package harness

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// ErrNoContainerDNS is the cause CheckContainerDNS names, so that a test can tell it apart.
var ErrNoContainerDNS = fmt.Errorf("container DNS: a container on a user network cannot resolve another one by name")

// dnsFix says what to install, on the machines the project knows.
const dnsFix = `Every service finds the others by name (postgres, keycloak, order ...), so nothing can start.
With Podman 4 on Debian/Ubuntu (CNI networks), install the dnsname plugin:
    apt-get install golang-github-containernetworking-plugin-dnsname
(or switch Podman to netavark + aardvark-dns). A network created before the plugin was installed
has no DNS: remove it (podman network rm <name>). Docker's user networks resolve names by themselves.`

// CheckContainerDNS starts two containers on a new network and resolves one from the other,
// the way every service of the stack finds its peers. It fails within a minute, naming the
// missing piece and the fix, where the stack would otherwise wait many minutes for services
// that die at start with "lookup postgres: no such host".
func CheckContainerDNS(ctx context.Context) error {
	nw, err := network.New(ctx, network.WithLabels(ownLabels()))
	if err != nil {
		return fmt.Errorf("container DNS check: creating a network: %w", err)
	}
	defer func() { _ = nw.Remove(context.WithoutCancel(ctx)) }()
	return probeDNS(ctx, network.WithNetwork(nil, nw))
}

// probeDNS resolves, from one container, another one's name on the network attach joins.
func probeDNS(ctx context.Context, attach testcontainers.CustomizeRequestOption) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	name := "shop-dns-probe-" + uuid.NewString()[:8]
	start := func(name string) (testcontainers.Container, error) {
		opts := []testcontainers.ContainerCustomizer{
			attach, testcontainers.WithLabels(ownLabels()),
			testcontainers.WithWaitStrategyAndDeadline(45*time.Second, wait.ForLog("Ready to accept connections")),
		}
		if name != "" {
			opts = append(opts, testcontainers.WithName(name))
		}
		return testcontainers.Run(ctx, RedisImage, opts...)
	}
	target, err := start(name)
	if target != nil {
		defer func() { _ = target.Terminate(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		return fmt.Errorf("container DNS check: starting %s: %w", RedisImage, err)
	}
	asker, err := start("")
	if asker != nil {
		defer func() { _ = asker.Terminate(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		return fmt.Errorf("container DNS check: starting %s: %w", RedisImage, err)
	}
	code, out, err := asker.Exec(ctx, []string{"redis-cli", "-h", name, "ping"}, tcexec.Multiplexed())
	if err != nil {
		return fmt.Errorf("container DNS check: running redis-cli: %w", err)
	}
	b, _ := io.ReadAll(out)
	if code == 0 && strings.Contains(string(b), "PONG") {
		return nil
	}
	return fmt.Errorf("%w (%q answered: %s).\n%s", ErrNoContainerDNS, "redis-cli -h "+name, strings.TrimSpace(string(b)), dnsFix)
}
