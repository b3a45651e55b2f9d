// Package integration holds the shop's end-to-end tests: the real Keycloak, PostgreSQL,
// Redis and the services in containers started with testcontainers-go, driven over HTTP
// and through a real browser. `make e2e` runs them; they need a Docker API (Docker, or
// Podman's API socket, see the README).
package integration
