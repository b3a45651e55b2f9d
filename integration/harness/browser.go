package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is a real headless Chromium driven with chromedp. Each Browser has its own
// profile, so cookies (sessions) are not shared between Browsers. When the test fails, a
// screenshot and the page's HTML are saved under integration/artifacts/<test name>/.
type Browser struct {
	t      testing.TB
	ctx    context.Context
	cancel func()
}

// chromiumPath finds Debian's chromium (or a Chrome) on PATH, or SHOP_CHROMIUM.
func chromiumPath() (string, error) {
	if p := os.Getenv("SHOP_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: install Debian's chromium package (.ci/run does) or set SHOP_CHROMIUM")
}

// NewBrowser starts Chromium for the test; it is closed when the test ends.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Without these Chromium calls hosts a closed network cannot reach.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		acancel()
		t.Fatalf("starting Chromium at %s: %v", path, err)
	}
	b := &Browser{t: t, ctx: ctx, cancel: func() { cancel(); acancel() }}
	t.Cleanup(func() {
		if t.Failed() {
			b.SaveArtifacts("failure")
		}
		b.cancel()
	})
	return b
}

// run runs steps with a bound on time, failing the test with the page's URL on error.
func (b *Browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s (at %s): %v", what, b.URL(), err)
	}
}

// Open navigates to url and waits for the page to load.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.run("open "+url, chromedp.Navigate(url))
}

// Click clicks the element and, when that navigates, waits for the new page.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		b.t.Fatalf("click %s (at %s): %v", sel, b.URL(), err)
	}
}

// Fill sets the value of an input.
func (b *Browser) Fill(sel, value string) {
	b.t.Helper()
	b.run("fill "+sel, chromedp.SetValue(chromedp.CSS(sel), value, chromedp.NodeVisible))
}

// WaitFor waits until the element is visible.
func (b *Browser) WaitFor(sel string) {
	b.t.Helper()
	b.run("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Text returns the visible text of the first element matching sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("text of %s (at %s): %v", sel, b.URL(), err)
	}
	return s
}

// Has reports whether an element matching sel exists now (no waiting).
func (b *Browser) Has(sel string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		b.t.Fatalf("query %s: %v", sel, err)
	}
	return n > 0
}

// Attr returns an attribute of the first element matching sel.
func (b *Browser) Attr(sel, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name, chromedp.NodeReady))
	if err != nil {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return r.Value
}

// URL is the current page's URL.
func (b *Browser) URL() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	u, _ := chromedp.Run(ctx, chromedp.Location())
	return u
}

// KeycloakLogin fills in Keycloak's real login page, which must be showing.
func (b *Browser) KeycloakLogin(u User) {
	b.t.Helper()
	b.WaitFor("#kc-form-login")
	b.Fill("#username", u.Name)
	b.Fill("#password", u.Password)
	b.Click("#kc-login")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SaveArtifacts writes a screenshot and the HTML of the current page under
// integration/artifacts/<test name>/<label>.{png,html}.
func (b *Browser) SaveArtifacts(label string) {
	dir := filepath.Join(RepoRoot(), "integration", "artifacts", unsafeName.ReplaceAllString(b.t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, label+".png"), png, 0o644)
	}
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
		_ = os.WriteFile(filepath.Join(dir, label+".html"), []byte(html), 0o644)
	}
	b.t.Logf("browser artifacts of %q (at %s) in %s", label, b.URL(), dir)
}

// Screenshot writes a PNG of the page at path (for docs).
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".png") {
		path += ".png"
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
