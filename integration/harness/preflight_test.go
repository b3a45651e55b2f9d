package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// On a user network (what the stack and compose create), one container finds another by name.
func TestContainerDNSCheckPassesOnAUserNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := CheckContainerDNS(ctx); err != nil {
		t.Fatal(err)
	}
}

// The engine's default network resolves no container names, in Docker and in Podman alike:
// the state of a CNI network without the dnsname plugin. The check must fail fast there and
// name container DNS and the fix.
func TestContainerDNSCheckNamesTheMissingPiece(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	err := probeDNS(ctx, defaultNetwork(t, ctx))
	if !errors.Is(err, ErrNoContainerDNS) {
		t.Fatalf("on a network without DNS the check said %v", err)
	}
	for _, want := range []string{"container DNS", "golang-github-containernetworking-plugin-dnsname", "netavark"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message does not name %q:\n%v", want, err)
		}
	}
	if took := time.Since(started); took > time.Minute {
		t.Errorf("the check took %s to fail", took)
	}
	t.Logf("the check failed in %s with:\n%v", time.Since(started).Round(time.Millisecond), err)
}

// defaultNetwork leaves a container on the engine's default network, where it goes when none
// is named: "bridge" in Docker, "podman" in Podman. (Podman's Docker API does not take the
// name "bridge" when creating a container, so none is named.)
func defaultNetwork(*testing.T, context.Context) testcontainers.CustomizeRequestOption {
	return func(*testcontainers.GenericContainerRequest) error { return nil }
}

// Leftovers are told apart by their owner: a live process's resources are not touched.
func TestLeftoversAreThoseOfGoneProcesses(t *testing.T) {
	mine := ownLabels()
	if leftover(mine) || !own(mine) {
		t.Fatal("this process's own resources were taken for leftovers")
	}
	gone := map[string]string{labelOwner: strings.Split(owner(), "/")[0] + "/999999999"}
	if !leftover(gone) || own(gone) {
		t.Fatal("a gone process's resources were not taken for leftovers")
	}
	if !leftover(map[string]string{"io.podman.compose.project": ComposeProjectPrefix + "999999999-abcd1234"}) {
		t.Fatal("a gone compose check's project was not taken for leftovers")
	}
	if leftover(map[string]string{"com.docker.compose.project": "main"}) {
		t.Fatal("a user's own compose project was taken for a leftover")
	}
}
