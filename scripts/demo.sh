#!/usr/bin/env bash
# Sets everything up, then runs the guide's scenario end to end in the console.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out="${1:-demo-output}"
.venv/bin/python examples/serialization.py "$out"
