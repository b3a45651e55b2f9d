package session

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// harness serves a tiny app over the manager: /login logs in a user, /whoami tells who is
// logged in, /add adds to the cart.
func harness(t *testing.T) (*fiber.App, *Manager, *Memory) {
	mem := NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	m := NewManager(Config{Backend: mem, Idle: time.Hour, Max: 10 * time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app := fiber.New()
	app.Use(m.Serialize(), m.Middleware())
	app.Get("/login/:sub/:sid", func(c *fiber.Ctx) error {
		From(c).LogIn(&User{Subject: c.Params("sub"), SessionID: c.Params("sid"), LoginAt: time.Now()}, &Tokens{Access: "a"})
		Rotate(c)
		return nil
	})
	app.Get("/whoami", func(c *fiber.Ctx) error {
		if s := From(c); s.LoggedIn() {
			return c.SendString(s.User.Subject)
		}
		return c.SendString("nobody")
	})
	app.Get("/add", func(c *fiber.Ctx) error { return From(c).Cart.Add("p", 1) })
	// slow-add reads the cart, waits, and adds: the window two tabs would race in.
	app.Get("/slow-add", func(c *fiber.Ctx) error {
		s := From(c)
		time.Sleep(20 * time.Millisecond)
		return s.Cart.Add("p", 1)
	})
	app.Get("/cart", func(c *fiber.Ctx) error { return c.SendString(strconv.Itoa(From(c).Cart.Count())) })
	app.Get("/logout", func(c *fiber.Ctx) error { Destroy(c); return nil })
	return app, m, mem
}

func get(t *testing.T, app *fiber.App, path, cookie string) (string, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "shop_session", Value: cookie})
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "shop_session" {
			cookie = c.Value
		}
	}
	return string(body), cookie
}

func TestAbsoluteTimeout(t *testing.T) {
	app, m, _ := harness(t)
	_, id := get(t, app, "/login/u1/s1", "")
	if who, _ := get(t, app, "/whoami", id); who != "u1" {
		t.Fatalf("whoami %q", who)
	}
	m.now = func() time.Time { return time.Now().Add(11 * time.Hour) }
	who, newID := get(t, app, "/whoami", id)
	if who != "nobody" || newID == id {
		t.Fatalf("after the absolute timeout: %q, id kept: %v", who, newID == id)
	}
}

func TestEndSessions(t *testing.T) {
	app, m, mem := harness(t)
	_, a1 := get(t, app, "/login/u1/s1", "")
	_, a2 := get(t, app, "/login/u1/s2", "")
	_, b1 := get(t, app, "/login/u2/s3", "")
	ctx := context.Background()

	n, err := m.EndSessions(ctx, "s1", "u1")
	if err != nil || n != 1 {
		t.Fatalf("by sid: %d %v", n, err)
	}
	if v, _ := mem.Get(recordPrefix + a1); v != nil {
		t.Error("the record of the ended session is still stored")
	}
	for cookie, want := range map[string]string{a1: "nobody", a2: "u1", b1: "u2"} {
		if who, _ := get(t, app, "/whoami", cookie); who != want {
			t.Errorf("session of %s: %q", want, who)
		}
	}
	// The subject's index still names the session ended above; ending it again is harmless.
	if n, _ := m.EndSessions(ctx, "", "u1"); n != 2 {
		t.Errorf("by subject: the index named %d sessions, want 2", n)
	}
	if who, _ := get(t, app, "/whoami", a2); who != "nobody" {
		t.Error("a session of the subject survived")
	}
	if who, _ := get(t, app, "/whoami", b1); who != "u2" {
		t.Error("another user's session ended")
	}
}

// TestEndedSessionResurrected: a request in flight during the logout saves its record
// again; the tombstone still logs it out.
func TestEndedSessionResurrected(t *testing.T) {
	app, m, mem := harness(t)
	_, id := get(t, app, "/login/u1/s1", "")
	saved, _ := mem.Get(recordPrefix + id)
	if _, err := m.EndSessions(context.Background(), "s1", ""); err != nil {
		t.Fatal(err)
	}
	_ = mem.Set(recordPrefix+id, saved, time.Hour) // the in-flight request's late save
	if who, _ := get(t, app, "/whoami", id); who != "nobody" {
		t.Fatal("a resurrected record is logged in")
	}
}

func TestSaveOnlyWhenChanged(t *testing.T) {
	app, _, _ := harness(t)
	if _, id := get(t, app, "/whoami", ""); id != "" {
		t.Error("an unchanged new session was stored and given a cookie")
	}
	_, id := get(t, app, "/add", "")
	if id == "" {
		t.Fatal("a changed session got no cookie")
	}
	if _, again := get(t, app, "/add", id); again != id {
		t.Error("the id changed without a login")
	}
	_, gone := get(t, app, "/logout", id)
	if gone == id {
		t.Error("logout kept the cookie")
	}
}

// TestConcurrentRequestsOfASessionLoseNothing: requests of one session that change it at
// the same moment (two tabs adding to the cart) run one after the other, so every change
// is kept; without Serialize each would save the cart it loaded, and the last would win.
func TestConcurrentRequestsOfASessionLoseNothing(t *testing.T) {
	app, _, mem := harness(t)
	_, id := get(t, app, "/add", "")
	const tabs = 8
	var wg sync.WaitGroup
	for range tabs {
		wg.Go(func() { get(t, app, "/slow-add", id) })
	}
	wg.Wait()
	if got, _ := get(t, app, "/cart", id); got != strconv.Itoa(1+tabs) {
		t.Fatalf("cart holds %s after 1 + %d concurrent adds, want %d", got, tabs, 1+tabs)
	}
	if v, _ := mem.Get(lockPrefix + id); v != nil {
		t.Fatal("the session lock outlived the requests")
	}
}
