#!/usr/bin/env bash
# Sets up Podman as the container engine for testcontainers-go (see shared CONTAINERS.md):
#  - installs podman and friends from Debian if missing,
#  - writes /etc/containers/containers.conf (runc, cgroupfs, ulimits within the machine's own),
#  - starts `podman system service` on /var/run/docker.sock (Docker API) unless it already answers,
#  - prints the environment a caller must export.
# Idempotent; run as root from anywhere. When it starts the service it writes the service's pid
# to .cache/podman-service.pid (repo root) so that a caller can stop it again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
sock=/var/run/docker.sock
log() { echo "setup-podman: $*" >&2; }

# --- packages ---------------------------------------------------------------------------
pkgs=(podman runc fuse-overlayfs slirp4netns uidmap debootstrap golang-github-containernetworking-plugin-dnsname)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ -z "${SHOP_APT_UPDATED:-}" ]; then
    apt-get update -qq >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- engine configuration -------------------------------------------------------------
conf=/etc/containers/containers.conf
want=$(cat <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  log "writing $conf"
  mkdir -p /etc/containers
  printf '%s\n' "$want" > "$conf"
fi

# --- Docker API service -----------------------------------------------------------------
ping() { curl -fsS --max-time 3 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }
if ping; then
  log "Docker API already answering on $sock"
else
  rm -f "$sock"
  mkdir -p "$root/.cache"
  log "starting podman system service on unix://$sock (log: .cache/podman-service.log)"
  # Started from / : the service outlives this checkout's shell, and a service whose working
  # directory is deleted (a removed worktree) can no longer start containers.
  (cd / && exec setsid nohup podman system service --time=0 "unix://$sock" \
    >"$root/.cache/podman-service.log" 2>&1 </dev/null) &
  echo $! > "$root/.cache/podman-service.pid"
  for _ in $(seq 1 60); do
    ping && break
    if ! kill -0 "$(cat "$root/.cache/podman-service.pid")" 2>/dev/null; then
      log "podman system service exited:"; cat "$root/.cache/podman-service.log" >&2; exit 1
    fi
    sleep 0.5
  done
  ping || { log "Docker API did not answer on $sock within 30s"; cat "$root/.cache/podman-service.log" >&2; exit 1; }
  log "Docker API answering (pid $(cat "$root/.cache/podman-service.pid"))"
fi
if command -v docker >/dev/null 2>&1; then
  DOCKER_HOST="unix://$sock" docker version --format 'docker client {{.Client.Version}} -> server {{.Server.Version}}' >&2 || true
fi

# --- container DNS ----------------------------------------------------------------------
# Every service finds its peers by name (postgres, keycloak, order ...). Debian's Podman 4 puts
# containers on CNI networks, which resolve names only with the dnsname plugin; netavark
# networks need aardvark-dns. Without it every service dies at start with "lookup postgres: no
# such host", so say so now rather than after a long wait.
dns_fail() {
  log "container DNS: $*"
  log "  fix: apt-get install golang-github-containernetworking-plugin-dnsname (CNI backend),"
  log "  or aardvark-dns with Podman's netavark backend; then remove networks created before"
  log "  (podman network rm <name>): a network keeps the DNS setting it was created with."
  exit 1
}
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
case "$backend" in
  cni)
    found=''
    for d in /usr/lib/cni /usr/libexec/cni /opt/cni/bin; do [ -x "$d/dnsname" ] && found=$d/dnsname; done
    [ -n "$found" ] || dns_fail "Podman uses CNI networks and the dnsname plugin is missing"
    ;;
  netavark)
    found=''
    for d in /usr/libexec/podman /usr/lib/podman; do [ -x "$d/aardvark-dns" ] && found=$d/aardvark-dns; done
    [ -n "$found" ] || dns_fail "Podman uses netavark networks and aardvark-dns is missing"
    ;;
  *) log "container DNS: unknown network backend '$backend', not checked" ;;
esac
# With an image at hand (a machine that built the stand-ins before), prove it: two containers
# on a new network, one resolving the other by name. The e2e harness does the same before
# every run (harness.CheckContainerDNS), so a fresh machine is covered there.
probe_image=$(podman images --format '{{.Repository}}:{{.Tag}}' 'localhost/shop-standin/redis' 2>/dev/null | head -n1 || true)
if [ -n "$probe_image" ]; then
  net=shop-dns-probe-$$
  cleanup_probe() { podman rm -f -t 0 "$net-a" "$net-b" >/dev/null 2>&1 || true; podman network rm -f "$net" >/dev/null 2>&1 || true; }
  cleanup_probe
  podman network create "$net" >/dev/null
  podman run -d --name "$net-a" --network "$net" "$probe_image" >/dev/null
  if ! answer=$(timeout 60 podman run --rm --name "$net-b" --network "$net" "$probe_image" \
      sh -c "for i in \$(seq 1 20); do redis-cli -h $net-a ping 2>&1 | grep -q PONG && { echo PONG; exit 0; }; sleep 0.5; done; redis-cli -h $net-a ping 2>&1" 2>&1) \
      || [ "$answer" != PONG ]; then
    cleanup_probe
    dns_fail "a container on a new network could not resolve another by name ($answer)"
  fi
  cleanup_probe
  log "container DNS: checked ($backend network, $probe_image)"
fi

# --- environment for callers ------------------------------------------------------------
cat <<EOF
export DOCKER_HOST=unix://$sock
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
EOF
