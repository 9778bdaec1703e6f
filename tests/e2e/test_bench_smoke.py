"""The benchmark scripts keep running and stay correct at a small size. Speed is not
checked here (a small run on a busy machine proves nothing about it; `make bench` does):
a bench exits 0 when it meets its targets and 3 (bench/report.py MISSED) when one is
missed, so either is accepted, and the correctness fields of the last JSON line are
asserted instead."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.report import MISSED

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*argv: str, timeout: int = 300) -> dict:
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode in (0, MISSED), proc.stdout[-3000:] + proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["pass"] is (proc.returncode == 0) and last["pass"] is (not last["missed"])
    assert last["targets"]  # every bench states what it is held to
    return last


def test_ledger_bench_runs_and_ends_with_its_json_line(aws):
    last = run_bench("bench/ledger.py", "--rounds", "1", "--per-round", "30", "--accounts", "3")
    assert last["bench"] == "ledger" and last["postings"] == 30
    assert last["balances_exact"] is True
    assert last["cpu_ms_per_posting"]["service"] > 0 and last["cpu_ms_per_posting"]["raw"] > 0


def test_ingest_bench_runs_and_ends_with_its_json_line(aws):
    last = run_bench("bench/ingest.py", "--rounds", "1", "--per-round", "20", "--meters", "4")
    assert last["bench"] == "ingest" and last["readings"] == 20
    assert last["balances_exact"] is True


def test_webhook_bench_runs_and_ends_with_its_json_line(aws):
    last = run_bench("bench/webhook.py", "--notifications", "40", "--accounts", "4")
    assert last["bench"] == "webhook" and last["notifications"] == 40
    assert last["credited_exactly_once"] is True


def test_bus_bench_runs_and_ends_with_its_json_line():
    last = run_bench("bench/bus.py", "--meters", "4", "--cycles", "1")
    assert last["bench"] == "bus" and last["meters"] == 4 and last["failures"] == 0
    assert last["ratio"] >= 1.0  # never faster than the wire allows


def test_pay_to_power_bench_closes_the_relay_and_credits_once(aws):
    last = run_bench("bench/pay_to_power.py", "--trials", "3", "--floor-samples", "3", timeout=120)
    assert last["bench"] == "pay_to_power" and last["trials"] == 3
    assert last["credited_exactly_once"] is True and last["relay_closed_and_reported"] is True
    assert last["errors"] == 0
    # never faster than the two hops it cannot avoid
    assert last["p50_ms"] >= last["floor_sqs_ms"] + last["floor_modbus_ms"] * 0.9


def test_cold_import_bench_answers_fresh_processes_and_credits_once(aws):
    last = run_bench("bench/cold_import.py", "--rounds", "1", "--trials", "1", timeout=300)
    assert last["bench"] == "cold_import" and last["rounds"] == 1
    assert last["notifications"] == 5  # one timed, then four at once, each in its own fresh process
    assert last["credited_exactly_once"] is True
    assert set(last["imports"]) >= {"functions.wechatpay_notify", "functions.uplink_consumer", "miniprogram_api.wsgi"}


def test_cost_bench_counts_every_request_and_prices_every_cell(aws):
    last = run_bench("bench/cost.py", "--bus-meters", "3", "--rounds", "1", "--payments", "1", "--commands", "2",
                     "--ticks", "1", timeout=300)
    assert last["bench"] == "cost" and last["bus_meters"] == 3
    # the work it measured was done right, and the hooks saw exactly what the emulator served
    assert last["readings_posted_exactly"] is True and last["credited_exactly_once"] is True
    assert last["commands_applied"] is True and last["ledger_audit_clean"] is True
    assert last["requests_counted"] is True
    # a rated reading writes its ledger entry, account and meter in one transaction: at least
    # 2 WRU for each of the three items (DynamoDB bills a transactional write twice)
    assert last["measured"]["wru_per_message"]["warm"] >= 3 * 3 * 2
    bill = last["per_meter_month_cny"]
    assert set(bill) == {"1000", "100000"} and all(set(bill[f]) == {"1", "5", "15"} for f in bill)
    # fifteen times the readings of the 15-minute cell cannot cost less than it
    assert all(0 < bill[f]["15"] < bill[f]["5"] < bill[f]["1"] for f in bill)
    assert set(last["targets"]) >= {"cny_per_meter_month_15min_1000", "cny_per_meter_month_15min_100000"}


def test_console_bench_renders_every_tile_right_with_requests_per_building_only(aws):
    last = run_bench("bench/console.py", "--buildings", "2", "--floors", "2", "--rooms-per-floor", "5",
                     "--small-buildings", "1", "--small-floors", "2", "--renders", "1", timeout=300)
    assert last["bench"] == "console" and last["rooms"] == 20
    assert last["tiles_right"] is True and last["requests_stable"] is True
    assert last["requests_beyond_one_per_building"] == {"20": 4, "10": 4}


def test_notify_bench_runs_and_ends_with_its_json_line(aws):
    last = run_bench("bench/notify.py", "--events", "40", "--accounts", "10")
    assert last["bench"] == "notify" and last["jobs"] == 40
    assert last["sent_template"] + last["sent_sms"] == 40 and last["sent_sms"] == 8  # 2 of 10 accounts by SMS
    assert "exactly_once" not in last["missed"]


def test_reports_bench_reads_the_month_exactly_with_requests_per_building(aws):
    last = run_bench("bench/reports.py", "--rooms", "60", "--per-building", "20", "--entries", "2", "--repeat", "1",
                     timeout=300)
    assert last["bench"] == "reports" and last["rooms"] == 60 and last["buildings"] == 3
    first, second = last["runs"]
    assert first["exact"] is True and second["exact"] is True
    assert second["ledger_entries"] == 2 * first["ledger_entries"]
    assert first["requests"] == second["requests"] <= 3 + 2  # grows with buildings, not entries


def test_batch_bench_trips_every_meter_once_through_the_queue(aws):
    last = run_bench("bench/batch.py", "--items", "30", "--sample", "10", timeout=300)
    assert last["bench"] == "batch" and last["items"] == 30 and last["messages"] == 2  # 25 + 5 items
    assert last["every_item_done"] is True and last["held_open_with_one_trip"] is True
    assert last["raw_items_per_s"] > 0 and last["batch_items_per_s"] > 0
