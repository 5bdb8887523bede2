# Shared set-up for scripts/run and scripts/test: install or start only what is missing.
# Sourced, not run. Every step is idempotent, so it works on a fresh machine and on a laptop.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mkdir -p var/log
STARTED_PIDS=()

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 4))); do "$@" && return 0; sleep 0.25; done
  echo "timed out waiting for $what" >&2; return 1
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  apt_install "postgresql-$version-postgis-3"
  if ! port_open 5432; then
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for 30 PostgreSQL port_open 5432
  fi
}

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_for 60 RabbitMQ port_open 5672
  as_root rabbitmqctl await_startup >/dev/null 2>&1 || true
}

DOCKERD_PID=""
ensure_docker() {
  command -v docker >/dev/null || apt_install docker.io
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || apt_install docker.io
  say "starting the Docker engine (no bridge network)"
  if [ "$(id -u)" -eq 0 ]; then
    dockerd --bridge=none --iptables=false >var/log/dockerd.log 2>&1 &
  else
    sudo dockerd --bridge=none --iptables=false >var/log/dockerd.log 2>&1 &
  fi
  DOCKERD_PID=$!
  STARTED_PIDS+=("$DOCKERD_PID")
  wait_for 60 "the Docker engine" docker info >/dev/null 2>&1 \
    || { tail -n 20 var/log/dockerd.log >&2; return 1; }
}

ensure_base_image() {
  # No image registry here: build debian:bookworm-slim locally, once, with python3 in it.
  # On a machine with a registry the app Dockerfiles pull the official image instead.
  docker image inspect debian:bookworm-slim >/dev/null 2>&1 && return 0
  apt_install debootstrap
  say "building the base image debian:bookworm-slim with debootstrap (about a minute)"
  local rootfs
  rootfs=$(mktemp -d)
  as_root debootstrap --variant=minbase --include=python3 bookworm "$rootfs" >var/log/debootstrap.log 2>&1
  as_root tar -C "$rootfs" -c . | docker import - debian:bookworm-slim >/dev/null
  as_root rm -rf "$rootfs"
}

ensure_venv() {
  local stamp=.venv/.installed
  if [ ! -x .venv/bin/python ]; then
    say "creating the virtualenv"
    python3 -m venv .venv || { apt_install python3-venv; python3 -m venv .venv; }
  fi
  if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
    || [ client/pyproject.toml -nt "$stamp" ] || ! .venv/bin/python -c 'import cure_client' 2>/dev/null; then
    say "installing CURE, its Python client (client/) and the versions pinned in requirements.lock"
    .venv/bin/python -m pip install -q --upgrade pip
    # Exactly the locked versions, each checked against its hash; then CURE and its client
    # themselves, whose dependencies the lock already holds (scripts/lock updates it).
    .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
    .venv/bin/python -m pip install -q --no-deps -e . -e client
    touch "$stamp"
  fi
}

ensure_node() {
  # The portal's build tools (Vite 7) need Node.js 20.19 or newer.
  command -v npm >/dev/null || apt_install nodejs npm
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
    || { echo "the portal needs Node.js 20.19 or newer (found $(node --version))" >&2; return 1; }
}

portal_stale() {  # the build is missing, or older than a source or the lock file
  local stamp=portal/dist/index.html
  [ -f "$stamp" ] || return 0
  [ -n "$(find portal/src portal/public portal/index.html portal/package.json portal/package-lock.json \
    portal/vite.config.ts portal/tsconfig.json -newer "$stamp" -print -quit 2>/dev/null)" ]
}

ensure_portal() {
  # The portal's node modules from its lock file (the npm registry configured on the machine),
  # then its build in portal/dist, which the API serves at /portal: only when missing or stale.
  ensure_node
  if [ ! -d portal/node_modules ] || [ portal/package-lock.json -nt portal/node_modules/.package-lock.json ]; then
    say "installing the portal's node modules (npm ci)"
    (cd portal && npm ci --no-audit --no-fund >../var/log/npm.log 2>&1) || { tail -n 20 var/log/npm.log >&2; return 1; }
  fi
  if portal_stale; then
    say "building the portal (vite)"
    (cd portal && npm run build >../var/log/portal-build.log 2>&1) \
      || { tail -n 30 var/log/portal-build.log >&2; return 1; }
  fi
}

ensure_test_tools() {
  # Headless Chromium draws /docs in a test and drives the portal's browser tests (Debian's:
  # playwright-core never downloads a browser); Compose validates compose.yaml in another.
  command -v chromium >/dev/null || apt_install chromium
  if ! docker compose version >/dev/null 2>&1; then
    command -v docker-compose >/dev/null || apt_install docker-compose
  fi
  # The many-hosts test and benchmark 10 make worker hosts with network namespaces (ip) and
  # enter them with unshare and nsenter (util-linux).
  command -v ip >/dev/null || apt_install iproute2
  { command -v unshare && command -v nsenter; } >/dev/null || apt_install util-linux
}

ensure_mailbox() {
  # Without a mail server, emails (password resets, order notifications) would fail and be
  # retried for days: catch them in var/mail/ instead (`cure mail list`, `cure mail show N`).
  local port="${CURE_SMTP_PORT:-1025}"
  if port_open "$port"; then return 0; fi
  say "starting the local mailbox on 127.0.0.1:$port (mail lands in var/mail/)"
  .venv/bin/cure mail serve --port "$port" >var/log/mail.log 2>&1 &
  STARTED_PIDS+=("$!")
  wait_for 15 "the local mailbox" port_open "$port"
}

set_up_everything() {
  ensure_postgres
  ensure_rabbitmq
  ensure_docker
  ensure_base_image
  ensure_venv
  ensure_portal
  say "building app images (only missing ones)"
  .venv/bin/cure apps build
}

stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}

ensure_stac_server() {
  # The real STAC API the federation tests search (stac-fastapi-pgstac), in a virtualenv of its
  # own (its FastAPI and pydantic pins are not CURE's), from its hash-pinned lock; again only
  # when the lock changed (var/stac-server/.installed holds the lock's sha256).
  local venv=var/stac-server lock=tests/federation/stac-server.lock digest
  digest=$(sha256sum "$lock" | cut -d' ' -f1)
  [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.installed" 2>/dev/null)" = "$digest" ] && return 0
  say "installing the STAC API test server (stac-fastapi-pgstac) in $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || { apt_install python3-venv; python3 -m venv "$venv"; }
  .venv/bin/uv pip sync -q --python "$venv/bin/python" --require-hashes "$lock"
  echo "$digest" >"$venv/.installed"
}
