#!/usr/bin/env bash
# Sets everything up, then runs notebooks/quickstart.ipynb headless (no browser needed) and
# writes the executed notebook, the dashboard's final picture and the checkpoints to OUT_DIR.
# Usage: scripts/demo_headless.sh [--no-setup] [OUT_DIR]   (default OUT_DIR: demo-output/headless)
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1
if [ "${1:-}" = "--no-setup" ]; then setup=0; shift; fi
[ "$setup" = 1 ] && scripts/setup.sh
[ -x .venv/bin/python ] || { echo "demo_headless.sh: .venv/bin/python is missing; run scripts/setup.sh (or drop --no-setup)" >&2; exit 1; }
out="${1:-demo-output/headless}"
mkdir -p "$out"
exec .venv/bin/python notebooks/run.py notebooks/quickstart.ipynb "$out" --png dashboard.png
