package harness

import (
	"github.com/testcontainers/testcontainers-go"
)

// Keycloak is the running Keycloak container with the shop realm imported.
type Keycloak struct {
	Container testcontainers.Container
	// URL is Keycloak's public base URL, the one the browser and the tests use.
	URL string
}

// Issuer is the realm's issuer: the public URL, whichever way a service reaches Keycloak.
func (k *Keycloak) Issuer() string { return k.URL + "/realms/shop" }
