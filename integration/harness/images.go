// Package harness starts the shop's end-to-end test stack with testcontainers-go and drives
// Keycloak's real login pages, so tests read like the scenarios they prove.
package harness

import (
	"os"
	"path/filepath"
	"runtime"
)

// The official images the suite runs by default: the same pins as docker-compose.yml's
// defaults (a test holds them together, and .ci/images.sh builds its stand-ins from them).
const (
	DefaultKeycloakImage = "keycloak/keycloak:26.7.3"
	DefaultPostgresImage = "postgres:17-alpine"
	DefaultRedisImage    = "redis:7-alpine"
)

// Image names come from environment variables whose defaults are the official images, so a
// user with Docker Hub access needs nothing extra; CI sets them to locally built stand-ins.
var (
	KeycloakImage = envOr("SHOP_KEYCLOAK_IMAGE", DefaultKeycloakImage)
	PostgresImage = envOr("SHOP_POSTGRES_IMAGE", DefaultPostgresImage)
	RedisImage    = envOr("SHOP_REDIS_IMAGE", DefaultRedisImage)
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// RepoRoot is the repository's top folder, found from this source file so tests work from
// any working directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
