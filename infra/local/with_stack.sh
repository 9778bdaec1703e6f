#!/usr/bin/env bash
# Run a command with a fresh local AWS emulator on a free port; stop it afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
port=${FEIKONG_MOTO_PORT:-$($PY -c 'from infra.local.stack import free_port; print(free_port())')}
$PY -m infra.local start --port "$port"
trap '$PY -m infra.local stop --port "$port" >/dev/null' EXIT
eval "$($PY -m infra.local env --port "$port")"
$PY -m infra.local bootstrap --port "$port" >/dev/null
"$@"
