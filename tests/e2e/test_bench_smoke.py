"""The benchmark scripts keep running (their speed targets live in the scripts, not here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ledger_bench_runs_and_ends_with_its_json_line(aws):
    proc = subprocess.run(
        [sys.executable, "bench/ledger.py", "--rounds", "1", "--per-round", "30", "--accounts", "3"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "ledger" and last["postings"] == 30
    assert last["balances_exact"] is True
    assert last["ratio"] > 0


def test_ingest_bench_runs_and_ends_with_its_json_line(aws):
    proc = subprocess.run(
        [sys.executable, "bench/ingest.py", "--rounds", "1", "--per-round", "20", "--meters", "4"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "ingest" and last["readings"] == 20
    assert last["balances_exact"] is True and last["requests_per_reading"] > 0


def test_webhook_bench_runs_and_ends_with_its_json_line(aws):
    proc = subprocess.run(
        [sys.executable, "bench/webhook.py", "--notifications", "40", "--accounts", "4"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "webhook" and last["notifications"] == 40
    assert last["credited_exactly_once"] is True and last["p99_ms"] > 0


def test_bus_bench_runs_and_ends_with_its_json_line():
    proc = subprocess.run([sys.executable, "bench/bus.py", "--meters", "4", "--cycles", "1"], cwd=ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["bench"] == "bus" and last["meters"] == 4 and last["failures"] == 0
    assert last["ratio"] >= 1.0  # never faster than the wire allows
