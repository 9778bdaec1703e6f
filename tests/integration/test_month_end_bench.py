"""bench/month_end.py keeps running and stays correct at a small size (as tests/e2e/test_bench_smoke.py
does for the other benches: speed is `make bench`'s business, so exit 0 or 3 is accepted and the
correctness fields of the last JSON line are asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.report import MISSED

ROOT = Path(__file__).resolve().parents[2]


def test_month_end_bench_runs_exactly_and_a_rerun_changes_nothing(aws):
    proc = subprocess.run([sys.executable, "bench/month_end.py", "--rooms", "8", "--per-building", "4",
                           "--postpaid-every", "4", "--rerun"], cwd=ROOT, env=dict(os.environ), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode in (0, MISSED), proc.stdout[-3000:] + proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["pass"] is (proc.returncode == 0) and last["pass"] is (not last["missed"])
    assert last["bench"] == "month_end" and last["rooms"] == 8
    assert set(last["targets"]) == {"ratio", "scaling_2x", "exact", "rerun_changes_nothing"}
    assert last["exact"] is True and last["rerun_changes_nothing"] is True
    # 8 rooms in 2 buildings + the 公区 building: at least a fee or a rent line for each room
    # and its master's account, each one transaction
    assert last["transactions"] >= 8 + 2
