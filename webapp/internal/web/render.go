package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/webapp/internal/auth"
	"example.com/shop/webapp/internal/gateway"
	"example.com/shop/webapp/internal/session"
)

//go:embed templates
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one template set per page, each the layout plus that page's content.
type pages map[string]*template.Template

var funcs = template.FuncMap{
	"money":      formatMoney,
	"moneyPlain": formatAmount,
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006, 15:04 UTC")
	},
	"declineLabel": declineLabel,
	"itemCount": func(items []gateway.OrderItem) int {
		n := 0
		for _, it := range items {
			n += it.Quantity
		}
		return n
	},
	"statusLabel": func(s string) string {
		if s == "" {
			return ""
		}
		s = strings.ReplaceAll(s, "_", " ")
		return strings.ToUpper(s[:1]) + s[1:]
	},
}

func loadPages() (pages, error) {
	p := pages{}
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == "templates/layout.html" {
			return err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path, "templates/"), ".html")
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", path)
		if err != nil {
			return fmt.Errorf("template %s: %w", name, err)
		}
		p[name] = t
		return nil
	})
	return p, err
}

// view is what every page template sees.
type view struct {
	Title     string
	Nav       string // the main menu entry to mark as current
	Sub       string // the admin menu entry to mark as current
	User      *session.User
	IsAdmin   bool
	CartCount int
	CSRF      string
	Flashes   []session.Flash
	// Path is where to come back to after logging in from this page.
	Path string
	Data any
}

// page describes one rendering.
type page struct {
	name   string
	title  string
	nav    string
	sub    string
	status int
	data   any
}

// render writes p inside the layout. It takes the session's flash messages, so they show
// exactly once.
func (h *handlers) render(c *fiber.Ctx, p page) error {
	v := view{Title: p.title, Nav: p.nav, Sub: p.sub, Data: p.data, Path: auth.SafeReturnPath(requestPath(c))}
	if token, ok := c.Locals(csrfLocalsKey).(string); ok {
		v.CSRF = token
	}
	if session.Loaded(c) {
		st := session.From(c)
		v.CartCount = st.Cart.Count()
		if st.LoggedIn() {
			v.User = st.User
			v.IsAdmin = st.User.HasRole(roleAdmin)
		}
		v.Flashes = st.TakeFlashes()
	}
	t, ok := h.pages[p.name]
	if !ok {
		return fmt.Errorf("web: no page template %q", p.name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("web: rendering %s: %w", p.name, err)
	}
	if p.status == 0 {
		p.status = fiber.StatusOK
	}
	c.Status(p.status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(buf.Bytes())
}
