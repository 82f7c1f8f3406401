#!/usr/bin/env bash
# Sets everything up (browser included), then runs the whole test suite, slow tests too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
exec .venv/bin/python -m pytest "$@"
