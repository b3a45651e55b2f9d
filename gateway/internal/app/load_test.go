package app_test

import (
	"net/http"
	"testing"

	"example.com/shop/platform/testkit"
)

// The gateway survives many keep-alive clients at once with mixed methods and paths over its
// whole route table, with and without a token, and its metrics labels stay what the route
// table says. Issue 19: sixteen such clients crashed it within a second.
func TestGatewaySurvivesMixedConcurrentLoad(t *testing.T) {
	h := gateway(t, nil)
	testkit.MixedLoad(t, "http://"+h.addr, h.gw.App, testkit.LoadOptions{
		Header: http.Header{"Authorization": {"Bearer " + h.shopper}},
	})
}
