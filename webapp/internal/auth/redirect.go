package auth

import (
	"net/url"
	"strings"
)

// SafeReturnPath returns raw if it is a path on this site, and "/" otherwise. It is the
// only way a `next` parameter becomes a redirect, so the login cannot be turned into an
// open redirect: `//evil.example` and `/\evil.example` are other hosts to a browser,
// `javascript:` and absolute URLs are not paths, and browsers drop tabs and newlines
// (so `/\t/evil.example` is `//evil.example`). Percent-encoded forms are decoded and judged
// again, in case some layer decodes them before the browser sees them.
func SafeReturnPath(raw string) string {
	const home = "/"
	if raw == "" || len(raw) > 2048 {
		return home
	}
	s := raw
	for range 3 {
		if !localPath(s) {
			return home
		}
		decoded, err := url.PathUnescape(s)
		if err != nil {
			return home
		}
		if decoded == s {
			break
		}
		s = decoded
	}
	if !localPath(s) {
		return home
	}
	// Returning to the login machinery itself would loop.
	p, _, _ := strings.Cut(s, "?")
	if p == "/login" || p == "/logout" || strings.HasPrefix(p, "/auth/") {
		return home
	}
	return raw
}

func localPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
}
