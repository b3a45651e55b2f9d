#!/usr/bin/env bash
# The shop's performance benchmarks (make bench): installs what they need from Debian's
# packages, builds the benchmark programs and Spring Cloud Gateway, then runs the driver
# (gateway/bench/driver), which measures everything on loopback and writes
# docs/benchmarks.md and docs/benchmarks.png.
#
# Expects the services' binaries in bin/ (make build). Extra driver flags can be passed in
# BENCH_ARGS, e.g. BENCH_ARGS="-rounds 1 -duration 3s -docs .cache/bench/try" for a quick try.
set -euo pipefail

cd "$(dirname "$0")/../.."
started=$(date +%s)
work=.cache/bench
mkdir -p "$work/bin"

log() { printf '== %s\n' "$*"; }

# --- tools from Debian's packages (installed only when missing) ---------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v redis-server >/dev/null || need+=(redis-server)
command -v gnuplot >/dev/null || need+=(gnuplot-nox fonts-dejavu-core)
command -v taskset >/dev/null || need+=(util-linux)
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)

# PostgreSQL's server programs live in a versioned folder of its Debian package.
pg_bin() {
  local pkg
  pkg=$(dpkg-query -W -f='${Package} ${Status}\n' 'postgresql-[0-9]*' 2>/dev/null |
    awk '$NF == "installed" && $1 ~ /^postgresql-[0-9]+$/ {print $1}' | sort -V | tail -n1)
  if [ -n "$pkg" ]; then
    dpkg -L "$pkg" | grep '/bin/initdb$' | head -n1 | xargs -r dirname
  elif command -v initdb >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
  fi
}
[ -n "$(pg_bin)" ] || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  log "installing from Debian: ${need[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
pgbin=$(pg_bin)
[ -x "$pgbin/initdb" ] || { echo "PostgreSQL's initdb not found" >&2; exit 1; }

# --- the benchmark's own programs ----------------------------------------------------------
log "building the benchmark programs"
for p in fakeidp upstream bareproxy gwprof checkout driver; do
  CGO_ENABLED=0 go build -trimpath -o "$work/bin/$p" "./gateway/bench/$p"
done
CGO_ENABLED=0 go build -trimpath -tags pprof -o "$work/bin/bareproxy-prof" ./gateway/bench/bareproxy
# The internal CA and the services' certificates for their mutual-TLS listeners.
CGO_ENABLED=0 go build -trimpath -o "$work/bin/certs" ./platform/cmd/certs
"$work/bin/certs" -dir "$work/certs" >/dev/null
for s in gateway order payment webapp; do
  [ -x "bin/$s" ] || { echo "bin/$s is missing: run make build first" >&2; exit 1; }
done

# --- Spring Cloud Gateway, built from Maven Central (nothing of the build is committed) -------
scg_jar="$work/scg-target/scg.jar"
if [ ! -f "$scg_jar" ] || [ -n "$(find gateway/bench/scg -newer "$scg_jar" -type f -print -quit)" ]; then
  log "building Spring Cloud Gateway with Maven"
  mvn -B -q -f gateway/bench/scg/pom.xml -Dscg.buildDir="$PWD/$work/scg-target" -DskipTests package
fi

# --- measure ------------------------------------------------------------------------------
log "running the benchmarks (about 15 minutes)"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$work/bin/driver" -repo . -work "$work" -bench-bin "$work/bin" -bin bin -docs docs \
  -scg-jar "$scg_jar" -pg-bin "$pgbin" -wrk-lua gateway/bench/wrk.lua -started "$started" ${BENCH_ARGS:-}

log "done in $(( $(date +%s) - started )) s: docs/benchmarks.md, docs/benchmarks.png"
