package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// What the suite creates carries labels naming the run that owns it, so that a later run can
// tell what an earlier, killed or failed, run left behind from what a run going on beside it
// still uses. A network left without DNS by a run on a broken machine once made every later
// run fail the same way, until it was removed by hand.
const (
	labelSuite = "shop.e2e"
	labelOwner = "shop.e2e.owner" // "<hostname>/<pid>" of the test process
	// ComposeProjectPrefix starts the compose check's project names:
	// shop-e2e-<pid>-<random>, one per run.
	ComposeProjectPrefix = "shop-e2e-"
)

// composeProjectLabels are the labels by which Docker Compose and podman-compose mark what
// belongs to a project.
var composeProjectLabels = []string{"com.docker.compose.project", "io.podman.compose.project"}

func owner() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid())
}

// ownLabels mark a network or container as this run's.
func ownLabels() map[string]string {
	return map[string]string{labelSuite: "true", labelOwner: owner()}
}

// ComposeProject returns a project name of this run's own: an earlier run's leftovers are
// never reused, and a clone's folder name (`main`) is never shared with another clone.
func ComposeProject(random string) string {
	return fmt.Sprintf("%s%d-%s", ComposeProjectPrefix, os.Getpid(), random)
}

var composeOwnerPID = regexp.MustCompile(`^` + regexp.QuoteMeta(ComposeProjectPrefix) + `(\d+)-`)

// ownerOf names the process that created a resource, from its labels: this suite's owner
// label, or the pid in a compose check's project name (compose runs on this machine).
func ownerOf(labels map[string]string) (host string, pid int, ok bool) {
	if o, found := labels[labelOwner]; found {
		h, p, found := strings.Cut(o, "/")
		n, err := strconv.Atoi(p)
		return h, n, found && err == nil
	}
	for _, l := range composeProjectLabels {
		if m := composeOwnerPID.FindStringSubmatch(labels[l]); m != nil {
			n, _ := strconv.Atoi(m[1])
			host, _ := os.Hostname()
			return host, n, true
		}
	}
	return "", 0, false
}

// leftover reports whether labels mark a resource of an earlier run of this suite on this
// machine whose process is gone.
func leftover(labels map[string]string) bool {
	host, _ := os.Hostname()
	h, pid, ok := ownerOf(labels)
	return ok && h == host && !alive(pid)
}

// own reports whether labels mark a resource of this very process.
func own(labels map[string]string) bool {
	host, _ := os.Hostname()
	h, pid, ok := ownerOf(labels)
	return ok && h == host && pid == os.Getpid()
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RemoveLeftovers removes the containers, networks and volumes that earlier runs of the suite
// left on this machine, and returns what it removed. What it cannot remove is an error that
// names each one: the suite refuses to start over them.
func RemoveLeftovers(ctx context.Context) ([]string, error) {
	removed, err := removeWhere(ctx, leftover)
	if err != nil {
		return removed, fmt.Errorf("earlier e2e runs left these behind and they could not be removed; remove them by hand (podman rm -f / network rm / volume rm) and run again:\n%w", err)
	}
	return removed, nil
}

// RemoveOwn removes everything this process created (containers, networks, volumes), however
// far it got: the backstop of a failed start, an interrupt or a failed compose check.
func RemoveOwn(ctx context.Context) ([]string, error) { return removeWhere(ctx, own) }

func removeWhere(ctx context.Context, match func(labels map[string]string) bool) ([]string, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("reaching the container engine: %w", err)
	}
	defer cli.Close()
	var removed []string
	var stuck []error
	keys := append([]string{labelOwner}, composeProjectLabels...)
	seen := map[string]bool{}
	for _, key := range keys {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", key)})
		if err != nil {
			return removed, fmt.Errorf("leftovers: listing containers: %w", err)
		}
		for _, c := range cs.Items {
			if seen[c.ID] || !match(c.Labels) {
				continue
			}
			seen[c.ID] = true
			name := "container " + strings.TrimPrefix(strings.Join(c.Names, ","), "/")
			if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				stuck = append(stuck, fmt.Errorf("%s: %w", name, err))
				continue
			}
			removed = append(removed, name)
		}
	}
	for _, key := range keys {
		ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", key)})
		if err != nil {
			return removed, fmt.Errorf("leftovers: listing networks: %w", err)
		}
		for _, n := range ns.Items {
			if seen[n.ID] || !match(n.Labels) {
				continue
			}
			seen[n.ID] = true
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				stuck = append(stuck, fmt.Errorf("network %s: %w", n.Name, err))
				continue
			}
			removed = append(removed, "network "+n.Name)
		}
	}
	for _, key := range keys {
		vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", key)})
		if err != nil {
			return removed, fmt.Errorf("leftovers: listing volumes: %w", err)
		}
		for _, v := range vs.Items {
			if seen[v.Name] || !match(v.Labels) {
				continue
			}
			seen[v.Name] = true
			if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				stuck = append(stuck, fmt.Errorf("volume %s: %w", v.Name, err))
				continue
			}
			removed = append(removed, "volume "+v.Name)
		}
	}
	return removed, errors.Join(stuck...)
}
