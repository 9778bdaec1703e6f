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
if [ $# -eq 0 ]; then
  echo "== mini-program unit tests (jest + miniprogram-simulate)"
  npx --no-install jest --config miniprogram/jest.config.js --ci
fi
echo "== tests (unit, integration, e2e) against local AWS emulators"
# two workers (pytest-xdist), each with an AWS emulator of its own (tests/conftest.py);
# a module's tests stay on one worker, so its module-scoped servers and browser are made once
if [ $# -eq 0 ]; then set -- -n "${FEIKONG_TEST_WORKERS:-2}" --dist loadfile --durations=30 tests; fi
bash infra/local/with_stack.sh $V/python -m pytest -p no:cacheprovider "$@"
