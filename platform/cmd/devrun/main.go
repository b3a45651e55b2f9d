// Command devrun runs the whole shop on one machine for `make run`: Keycloak from its
// distribution, then every service on embedded defaults. It waits until each is healthy,
// prints the URLs and demo users, and on Ctrl-C (or when any process fails) stops them
// all, leaving no orphan behind.
//
// It is a small Go supervisor rather than a shell script because it must kill whole
// process groups (Keycloak's launcher forks Java), forward signals reliably, and clean up
// even when a start fails half-way.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	logDir := filepath.Join(root, "data", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	var started []*proc
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].stop()
		}
	}()
	exited := make(chan *proc, len(stack))
	for _, spec := range stack {
		p, err := start(root, logDir, spec, exited)
		if err != nil {
			return err
		}
		started = append(started, p)
		fmt.Printf("starting %-9s (log: data/logs/%s.log)\n", spec.name, spec.name)
		if err := waitHealthy(ctx, p, exited); err != nil {
			p.showLog()
			return err
		}
		fmt.Printf("  %-9s is up at %s\n", spec.name, spec.url)
	}
	printWelcome()
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping...")
		return nil
	case p := <-exited:
		p.showLog()
		return fmt.Errorf("%s exited unexpectedly: %v", p.spec.name, p.err)
	}
}

// proc is one supervised process.
type proc struct {
	spec service
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(root, logDir string, s service, exited chan<- *proc) (*proc, error) {
	logPath := filepath.Join(logDir, s.name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(root, s.command[0]), s.command[1:]...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group, so stop() reaches grandchildren too; and SIGTERM from the kernel
	// if devrun itself dies, so nothing outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", s.name, err)
	}
	p := &proc{spec: s, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
		exited <- p
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after 15 seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	fmt.Printf("  stopped %s\n", p.spec.name)
}

func (p *proc) showLog() {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	fmt.Fprintf(os.Stderr, "--- last lines of data/logs/%s.log ---\n%s\n", p.spec.name, b)
}

func waitHealthy(ctx context.Context, p *proc, exited <-chan *proc) error {
	deadline := time.After(p.spec.startTimeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case q := <-exited:
			return fmt.Errorf("%s exited during start: %v", q.spec.name, q.err)
		case <-deadline:
			return fmt.Errorf("%s not healthy after %s (%s)", p.spec.name, p.spec.startTimeout, p.spec.health)
		case <-tick.C:
			resp, err := client.Get(p.spec.health)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
	}
}

// repoRoot finds the directory holding go.work, so devrun works from any sub-folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me inside the shop repository (no go.work found)")
		}
		dir = parent
	}
}
