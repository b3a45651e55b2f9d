package authz

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// Route is one line of a service's route table: method, path, policy, handler.
type Route struct {
	Method  string
	Path    string
	Policy  Policy
	Handler fiber.Handler
}

// Mount registers routes on r. Non-public routes run authenticate, then their policy, then
// the handler. It panics on a route without a valid policy: a missing policy is a
// programming error that must fail at start-up, not an open door.
func Mount(r fiber.Router, authenticate fiber.Handler, routes []Route) {
	for _, rt := range routes {
		if !rt.Policy.Valid() {
			panic(fmt.Sprintf("authz: route %s %s has no policy", rt.Method, rt.Path))
		}
		if rt.Policy.IsPublic() {
			r.Add(rt.Method, rt.Path, rt.Handler)
			continue
		}
		r.Add(rt.Method, rt.Path, authenticate, rt.Policy.Handler(), rt.Handler)
	}
}
