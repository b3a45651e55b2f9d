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
pkgs=(podman runc fuse-overlayfs slirp4netns uidmap debootstrap)
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

# --- environment for callers ------------------------------------------------------------
cat <<EOF
export DOCKER_HOST=unix://$sock
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
EOF
