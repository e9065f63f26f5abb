#!/usr/bin/env bash
# Install what is missing, then start the embedded Ferry stack (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ferry up
