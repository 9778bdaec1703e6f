#!/usr/bin/env bash
# Everything `make test` checks, in order; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
V=.venv/bin
echo "== ruff"
$V/ruff check .
echo "== import-linter contracts"
$V/lint-imports --no-cache
echo "== generated resources up to date"
$V/python -m infra.deploy.resources --check
echo "== tests (unit, integration, e2e) against a local AWS emulator"
if [ $# -eq 0 ]; then set -- tests; fi
bash infra/local/with_stack.sh $V/python -m pytest -p no:cacheprovider "$@"
