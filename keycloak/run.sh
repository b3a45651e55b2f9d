#!/usr/bin/env bash
# Runs Keycloak (keycloak/VERSION) in dev mode with the `shop` realm imported from
# keycloak/realm/shop-realm.json. Dev only: H2 database, plain HTTP, bootstrap admin.
#
# The dev database (data/h2 in the distribution) is wiped on every start so that the realm
# file is always the truth (Keycloak's --import-realm skips a realm that already exists).
# Set SHOP_KEYCLOAK_KEEP_DATA=1 to keep it (realm changes made in the admin console survive,
# edits of the realm file do not apply).
#
# Environment (all optional):
#   KC_HTTP_PORT                  HTTP port (8180)
#   KC_HTTP_MANAGEMENT_PORT       management port for /health and /metrics (9180)
#   KC_BOOTSTRAP_ADMIN_USERNAME   master-realm admin (admin)
#   KC_BOOTSTRAP_ADMIN_PASSWORD   its password (admin)
#   SHOP_WEBAPP_URL, SHOP_*_SECRET, SHOP_*_PASSWORD   substituted into the realm on import
#                                 (see keycloak/README.md)
# Extra arguments are passed to `kc.sh start-dev`, e.g. --hostname=http://keycloak:8180.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=$("$here/fetch.sh")

export KC_HTTP_PORT="${KC_HTTP_PORT:-8180}"
export KC_HTTP_MANAGEMENT_PORT="${KC_HTTP_MANAGEMENT_PORT:-9180}"
export KC_HEALTH_ENABLED="${KC_HEALTH_ENABLED:-true}"
export KC_BOOTSTRAP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
export KC_BOOTSTRAP_ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}"

if [ "${SHOP_KEYCLOAK_KEEP_DATA:-}" != "1" ]; then
  rm -rf "$dist/data/h2"
fi
# --import-realm reads every *.json in data/import; keep exactly our realm there.
rm -rf "$dist/data/import"
mkdir -p "$dist/data/import"
cp "$here/realm/shop-realm.json" "$dist/data/import/shop-realm.json"
# The realm's login theme (loginTheme "shop"); start-dev reads themes/ without caching.
rm -rf "$dist/themes/shop"
cp -R "$here/themes/shop" "$dist/themes/shop"

echo "Keycloak $(cat "$here/VERSION"): http://localhost:$KC_HTTP_PORT/realms/shop" \
  "(admin console http://localhost:$KC_HTTP_PORT/admin, health http://localhost:$KC_HTTP_MANAGEMENT_PORT/health/ready)" >&2
# exec: kc.sh forwards SIGINT/SIGTERM to the JVM, so Ctrl-C or a kill of this script stops it.
exec "$dist/bin/kc.sh" start-dev --import-realm "$@"
