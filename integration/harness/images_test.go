package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The suite and docker-compose.yml run the same versions: one pin each, which the compose
// file's defaults and the harness both name, and from which .ci/images.sh builds the
// stand-ins (it reads the PostgreSQL major from the compose file; Keycloak from
// keycloak/VERSION).
func TestImagePinsAgreeWithDockerCompose(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join(RepoRoot(), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for variable, image := range map[string]string{
		"SHOP_POSTGRES_IMAGE": DefaultPostgresImage,
		"SHOP_REDIS_IMAGE":    DefaultRedisImage,
		"SHOP_KEYCLOAK_IMAGE": DefaultKeycloakImage,
	} {
		if want := "${" + variable + ":-" + image + "}"; !strings.Contains(string(compose), want) {
			t.Errorf("docker-compose.yml does not default to the harness's image: want %s", want)
		}
	}
	version, err := os.ReadFile(filepath.Join(RepoRoot(), "keycloak", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(DefaultKeycloakImage, ":"+strings.TrimSpace(string(version))) {
		t.Errorf("keycloak/VERSION says %s, the harness runs %s", strings.TrimSpace(string(version)), DefaultKeycloakImage)
	}
}
