#!/usr/bin/env bash
# Install what is missing, then run the linter and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The web UI tests drive Debian's Chromium (no browser download works offline).
if ! command -v chromium >/dev/null; then
  echo "==> installing chromium (for the web UI tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
