package harness

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ProjectTrouble checks the containers of a compose project once. A container that has
// exited with an error or restarted twice will not come right by waiting longer (a missing
// container DNS made three services restart in a loop for 15 minutes once), so it is an
// error naming the container and carrying its last log lines; nil while all looks well.
func ProjectTrouble(ctx context.Context, project string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("reaching the container engine: %w", err)
	}
	defer cli.Close()
	seen := map[string]bool{}
	for _, key := range composeProjectLabels {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", key+"="+project)})
		if err != nil {
			return fmt.Errorf("listing the project's containers: %w", err)
		}
		for _, c := range cs.Items {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			in, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil {
				continue // removed meanwhile
			}
			st := in.Container.State
			exitedBadly := st != nil && !st.Running && st.Status == "exited" && st.ExitCode != 0
			if !exitedBadly && in.Container.RestartCount < 2 {
				continue
			}
			name := strings.TrimPrefix(in.Container.Name, "/")
			return fmt.Errorf("service container %s has restarted %d times (state %s, exit code %d); its last log lines:\n%s",
				name, in.Container.RestartCount, st.Status, st.ExitCode, tail(ctx, cli, c.ID, 40))
		}
	}
	return nil
}

// tail returns the last n lines of a container's log.
func tail(ctx context.Context, cli *testcontainers.DockerClient, id string, n int) string {
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return "(log unavailable: " + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	return out.String()
}
