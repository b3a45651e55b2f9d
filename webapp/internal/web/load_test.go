package web_test

import (
	"testing"

	"example.com/shop/platform/testkit"
)

// The web shop survives many keep-alive clients at once with mixed methods and paths over
// its whole route table, and its metrics labels stay what the route table says. Issue 19:
// one client sending ordinary requests could crash it.
func TestWebShopSurvivesMixedConcurrentLoad(t *testing.T) {
	e := newEnv(t)
	testkit.MixedLoad(t, testkit.ServeLoopback(t, e.app), e.app, testkit.LoadOptions{})
}
