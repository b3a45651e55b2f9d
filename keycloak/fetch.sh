#!/usr/bin/env bash
# Fetches the pinned Keycloak distribution (keycloak/VERSION) from Maven Central into the
# git-ignored .cache/keycloak folder, unpacks it once, and prints the unpacked directory.
# Maven does the download so that the same mirror/proxy settings as the rest of the build apply.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(tr -d '[:space:]' < "$root/keycloak/VERSION")
cache="$root/.cache/keycloak"
dist="$cache/keycloak-$version"
zip="$cache/keycloak-quarkus-dist-$version.zip"
mkdir -p "$cache"
if [ ! -x "$dist/bin/kc.sh" ]; then
  if [ ! -s "$zip" ]; then
    echo "fetching org.keycloak:keycloak-quarkus-dist:$version:zip with Maven..." >&2
    mvn -q -B dependency:copy \
      -Dartifact="org.keycloak:keycloak-quarkus-dist:$version:zip" \
      -DoutputDirectory="$cache" >&2
  fi
  rm -rf "$dist.tmp" && mkdir -p "$dist.tmp"
  (cd "$dist.tmp" && jar xf "$zip")   # jar ships with the JDK, so no unzip package is needed
  mv "$dist.tmp/keycloak-$version" "$dist" && rm -rf "$dist.tmp"
  chmod +x "$dist"/bin/*.sh
fi
echo "$dist"
