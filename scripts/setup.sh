#!/usr/bin/env bash
# Sets up .venv with pinned torch and trialbench (editable) plus its test tools.
# Usage: scripts/setup.sh [--browser]   (--browser also installs Debian chromium for UI tests)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (Debian packages) for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.trialbench-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing torch==2.13.0 and trialbench[test] into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 \
        | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" "torch==2.13.0" 2>&1 \
        | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import torch, trialbench; assert torch.__version__.startswith('2.13.0')"
    echo "$want" > "$stamp"
fi
