#!/usr/bin/env bash
# Sets everything up, then opens JupyterLab on notebooks/quickstart.ipynb (127.0.0.1 only).
# Usage: scripts/lab.sh [--no-setup] [--port N] [more jupyter lab options]
#   --no-setup  skip scripts/setup.sh (the .venv is already there)
#   --port N    listen on port N (default: the first free port from 8888)
# Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1 port=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-setup) setup=0; shift ;;
        --port) port="${2:?--port needs a number}"; shift 2 ;;
        --port=*) port="${1#--port=}"; shift ;;
        *) break ;;
    esac
done
[ "$setup" = 1 ] && scripts/setup.sh
[ -x .venv/bin/jupyter-lab ] || { echo "lab.sh: .venv/bin/jupyter-lab is missing; run scripts/setup.sh (or drop --no-setup)" >&2; exit 1; }

py=.venv/bin/python
if [ -z "$port" ]; then
    port=$("$py" - <<'PY'
import socket
for port in range(8888, 8988):
    with socket.socket() as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            continue
        print(port)
        break
else:
    raise SystemExit('lab: no free port between 8888 and 8987; give one with --port N')
PY
)
fi
token=$("$py" -c 'import secrets; print(secrets.token_hex(16))')
page=/lab/tree/notebooks/quickstart.ipynb
root=""; [ "$(id -u)" -eq 0 ] && root="--allow-root"

echo "trialbench: JupyterLab opens at http://127.0.0.1:$port$page?token=$token"
echo "trialbench: Ctrl-C stops it"
exec .venv/bin/jupyter lab --ip=127.0.0.1 --port="$port" --ServerApp.port_retries=0 \
    --IdentityProvider.token="$token" --ServerApp.root_dir="$PWD" \
    --ServerApp.default_url="$page" --LabApp.default_url="$page" $root "$@"
