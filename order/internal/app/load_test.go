package app

import (
	"net/http"
	"testing"

	"example.com/shop/platform/testkit"
)

// The order service, wired as in production, survives many keep-alive clients at once with
// mixed methods and paths over its whole public route table, with and without a token, and
// its metrics labels stay what the route table says (issue 19: one client could crash it).
func TestServiceSurvivesMixedConcurrentLoad(t *testing.T) {
	s := startStack(t, 300)
	alice := s.realm.iss.Token(t, s.realm.iss.User("alice-sub", "alice", "USER"))
	testkit.MixedLoad(t, s.public, s.svc.public.App, testkit.LoadOptions{
		Header: http.Header{"Authorization": {"Bearer " + alice}},
	})
}
