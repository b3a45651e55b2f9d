#!/usr/bin/env bash
# Builds the local stand-in images that replace the official PostgreSQL, Redis and Keycloak
# images on machines without a registry (see shared CONTAINERS.md), then prints the exports the
# tests read and writes them to .cache/images.env.
#
# Each image carries the label shop.standin.inputs=<hash of its inputs>; an image whose label
# matches is kept, so a second run on the same machine builds nothing, and a changed
# Containerfile/script (or base image, or Keycloak version) rebuilds just what depends on it.
#
# Images (all local, under localhost/ so that no engine tries to pull them):
#   localhost/shop-standin/debian:<suite>     debootstrap minbase + ca-certificates (bookworm;
#                                             trixie too when the pinned PostgreSQL needs it)
#   localhost/shop-standin/postgres:<major>   PostgreSQL from Debian, official-image interface; the
#                                             major is docker-compose.yml's (one pin)
#   localhost/shop-standin/redis:<major>      redis-server from Debian
#   localhost/shop-standin/keycloak:<version> Keycloak distribution (keycloak/VERSION) on JRE 17
# Set SHOP_IMAGES_REBUILD=1 to rebuild everything.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
images=.ci/images
suite=bookworm
label=shop.standin.inputs
base=localhost/shop-standin/debian:$suite
log() { echo "images: $*" >&2; }
die() { log "$*"; exit 1; }
tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT

command -v podman >/dev/null || die "podman missing: run .ci/setup-podman.sh first"

# --- helpers ------------------------------------------------------------------------------

# hash of files/dirs (relative paths and contents) plus extra strings
inputs_hash() {
  local extra=$1; shift
  {
    printf '%s\n' "$extra"
    find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-20
}

image_label() { podman image inspect --format "{{ index .Labels \"$label\" }}" "$1" 2>/dev/null || true; }

up_to_date() { # image hash
  [ -z "${SHOP_IMAGES_REBUILD:-}" ] && [ "$(image_label "$1")" = "$2" ]
}

# First URI of an enabled deb source for a suite, from the machine's apt sources
# (deb822 *.sources first, then one-line sources.list files).
apt_mirror() {
  local want=$1 f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk -v want="$want" '
      BEGIN { RS=""; FS="\n" }
      {
        types=""; uris=""; suites=""; enabled="yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          split(line, kv, ":")
          key = tolower(kv[1]); val = substr(line, length(kv[1]) + 2)
          gsub(/^[ \t]+|[ \t]+$/, "", val)
          if (key == "types") types = val
          else if (key == "uris") uris = val
          else if (key == "suites") suites = val
          else if (key == "enabled") enabled = tolower(val)
        }
        if (enabled == "no" || uris == "") next
        if ((" " types " ") !~ / deb /) next
        if ((" " suites " ") !~ (" " want " ")) next
        split(uris, u, /[ \t]+/); print u[1]; exit
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(sed -E 's/#.*//; s/\[[^]]*\]//' "$f" | awk -v want="$want" '$1 == "deb" && $3 == want { print $2; exit }')
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  return 1
}

declare -A took=()
timed() { # name command...
  local name=$1 t0=$SECONDS; shift
  "$@"
  took[$name]=$(( ${took[$name]:-0} + SECONDS - t0 ))
}

# --- base ---------------------------------------------------------------------------------

# build_base <suite>: the minimal Debian image of a suite, localhost/shop-standin/debian:<suite>.
build_base() {
  local suite=$1 image=localhost/shop-standin/debian:$1
  local h; h=$(inputs_hash "$suite" "$images/debian")
  if up_to_date "$image" "$h"; then log "$image up to date"; return; fi
  local mirror security tmp
  # The machine's sources name its own suite; the same archive serves the others.
  mirror=$(apt_mirror "$suite" || apt_mirror bookworm) || die "no deb source for suite $suite in the machine's apt sources"
  security=$(apt_mirror "$suite-security" || apt_mirror bookworm-security || true)
  log "building $image (debootstrap $suite from the machine's apt mirror)"
  tmp=$(mktemp -d); tmpdirs+=("$tmp")
  bash "$images/debian/rootfs.sh" "$tmp/rootfs" "$suite" "$mirror" "$security" > "$tmp/debootstrap.log" 2>&1 \
    || { tail -n 40 "$tmp/debootstrap.log" >&2; [ -f "$tmp/rootfs/debootstrap/debootstrap.log" ] && tail -n 40 "$tmp/rootfs/debootstrap/debootstrap.log" >&2; die "debootstrap failed"; }
  tar --numeric-owner -C "$tmp/rootfs" -c . | podman import \
    --change "LABEL $label=$h" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --quiet - "$image" >/dev/null
}

# --- derived images -----------------------------------------------------------------------

# build <image> <containerfile-dir> <context> <extra-hash-input> [build args...]
# (the hash covers the bookworm base; an image on another base names that base's label in extra)
build_derived() {
  local image=$1 dir=$2 context=$3 extra=$4; shift 4
  local h; h=$(inputs_hash "$extra base=$(image_label "$base")" "$dir")
  if up_to_date "$image" "$h"; then log "$image up to date"; return; fi
  log "building $image"
  podman build --pull=never --network=host --layers=false --quiet \
    --label "$label=$h" "$@" -f "$root/$dir/Containerfile" -t "$image" "$context" >/dev/null
}

timed base build_base "$suite"

# One pin for PostgreSQL: the major of docker-compose.yml's default image, which the e2e
# harness names too (integration/harness checks that they agree). The stand-in installs it
# from the Debian suite that ships it.
pg_major=$(sed -nE 's/.*SHOP_POSTGRES_IMAGE:-postgres:([0-9]+).*/\1/p' docker-compose.yml | head -n1)
case "$pg_major" in
  15) pg_suite=bookworm ;;
  17) pg_suite=trixie ;;
  *) die "docker-compose.yml names PostgreSQL '${pg_major:-?}'; no Debian suite known here ships it (15: bookworm, 17: trixie)" ;;
esac
if [ "$pg_suite" != "$suite" ]; then timed base build_base "$pg_suite"; fi
redis_major=7
kc_version=$(tr -d '[:space:]' < keycloak/VERSION)

postgres_image=localhost/shop-standin/postgres:$pg_major
redis_image=localhost/shop-standin/redis:$redis_major
keycloak_image=localhost/shop-standin/keycloak:$kc_version

timed postgres build_derived "$postgres_image" "$images/postgres" "$images/postgres" \
  "pg=$pg_major pgbase=$(image_label "localhost/shop-standin/debian:$pg_suite")" \
  --build-arg "PG_MAJOR=$pg_major" --build-arg "SUITE=$pg_suite"
timed redis build_derived "$redis_image" "$images/redis" "$images/redis" "redis=$redis_major"
# The Keycloak image is built from a pristine copy of the distribution (keycloak/fetch.sh puts the
# zip and an unpacked copy under .cache/keycloak; the unpacked copy may hold local run data).
kc_context() {
  local dist zip ctx
  dist=$(bash keycloak/fetch.sh)
  zip=.cache/keycloak/keycloak-quarkus-dist-$kc_version.zip
  ctx=$1
  if [ -s "$zip" ]; then
    (cd "$ctx" && jar xf "$root/$zip")
  else
    mkdir -p "$ctx/keycloak-$kc_version"
    tar -C "$dist" --exclude=./data -c . | tar -C "$ctx/keycloak-$kc_version" -x
  fi
  chmod +x "$ctx/keycloak-$kc_version"/bin/*.sh
}
kc_hash_input="keycloak=$kc_version"
if up_to_date "$keycloak_image" "$(inputs_hash "$kc_hash_input base=$(image_label "$base")" "$images/keycloak")"; then
  timed keycloak log "$keycloak_image up to date"
else
  kc_ctx=$(mktemp -d); tmpdirs+=("$kc_ctx")
  timed keycloak kc_context "$kc_ctx"
  timed keycloak build_derived "$keycloak_image" "$images/keycloak" "$kc_ctx/keycloak-$kc_version" "$kc_hash_input"
fi

# drop the untagged predecessors of rebuilt stand-ins (only images carrying our label)
podman image prune -f --filter "label=$label" >/dev/null || true

for k in base postgres redis keycloak; do log "$k: ${took[$k]}s"; done

mkdir -p .cache
cat > .cache/images.env <<EOF
export SHOP_POSTGRES_IMAGE=$postgres_image
export SHOP_REDIS_IMAGE=$redis_image
export SHOP_KEYCLOAK_IMAGE=$keycloak_image
EOF
cat .cache/images.env
