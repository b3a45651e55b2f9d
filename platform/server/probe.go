package server

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Probe asks the service listening on addr (":8081" or "host:port") whether it is ready and
// returns a process exit code: 0 when /readyz answers 200. Service images are FROM scratch,
// with no shell or curl, so `<binary> healthcheck` is how a container health check asks.
func Probe(addr string) int {
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: /readyz answered", resp.Status)
		return 1
	}
	return 0
}
