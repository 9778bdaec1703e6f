import json
from pathlib import Path

from cli import tariffs

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_preview_prints_every_charge_with_its_breakdown(capsys):
    assert tariffs.main(["preview", str(EXAMPLES / "plan-commercial-tou.json"), str(EXAMPLES / "readings.json")]) == 0
    out = capsys.readouterr().out
    # Tuesday (workday): flat 06-08, peak 08-12, flat 12-18, peak 18-22, valley 22-06
    # 07:30-08:30 2 kWh: 1 flat + 1 peak = 0.60 + 1.00 = 1.60
    # 08:30-12:30 4 kWh: 3.5 peak + 0.5 flat = 3.50 + 0.30 = 3.80
    # 12:30-18:30 6 kWh: 5.5 flat + 0.5 peak = 3.30 + 0.50 = 3.80
    # 18:30-22:30 4 kWh: 3.5 peak + 0.5 valley = 3.50 + 0.15 = 3.65; in all 12.85
    assert "计费 1.60 元" in out and "峰时段" in out and "谷时段" in out and "合计 12.85 元" in out


def test_preview_json_and_check(capsys):
    assert tariffs.main(["preview", "--json", str(EXAMPLES / "plan-water.json"), str(EXAMPLES / "readings.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {line["label"] for c in result["charges"] for line in c["lines"]} == {"水量", "污水处理费"}
    for name in ("plan-commercial-tou.json", "plan-residential-tiered.json", "plan-water.json"):
        assert tariffs.main(["check", str(EXAMPLES / name)]) == 0


def test_a_broken_plan_is_reported_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"plan_id": "x", "name": "x", "utility": "gas", "versions": []}))
    assert tariffs.main(["check", str(bad)]) == 1
    assert "utility" in capsys.readouterr().err


def test_preview_reports_anomalies_as_production_would_not_negative_charges(tmp_path, capsys):
    # a register going backwards: production flags it; the preview must not bill -70 fen
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps([
        {"read_at": "2026-11-24T10:00:00+08:00", "total": "100.00", "registers": {"peak": "60.00", "flat": "40.00"}},
        {"read_at": "2026-11-24T11:00:00+08:00", "total": "100.50", "registers": {"peak": "59.00", "flat": "41.50"}},
        {"read_at": "2026-11-24T12:00:00+08:00", "total": "101.50", "registers": {"peak": "60.00", "flat": "41.50"}},
        {"read_at": "2099-01-01T00:00:00+08:00", "total": "102.00", "received_at": "2026-11-24T12:30:00+08:00"},
    ]))
    plan = str(EXAMPLES / "plan-commercial-tou.json")
    assert tariffs.main(["preview", "--json", plan, str(readings)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcomes"] == ["baseline", "register_backwards", "billed", "read_time_future"]
    assert [(c["seq"], c["fen"]) for c in result["charges"]] == [(3, 100)]  # 1 kWh peak register x 1.00
    assert tariffs.main(["preview", plan, str(readings)]) == 0
    out = capsys.readouterr().out
    assert "读数倒走" in out and "读数时间超前" in out and "合计 1.00 元" in out and "-" not in out.split("合计")[1]


def test_preview_jump_rule_uses_the_given_rated_power(capsys):
    # 2 kWh in the first hour: a 10 kW meter may pass 12 kWh (20% margin), a 1 kW meter 1.2
    args = ["preview", "--json", str(EXAMPLES / "plan-commercial-tou.json"), str(EXAMPLES / "readings.json")]
    assert tariffs.main(args) == 0
    assert json.loads(capsys.readouterr().out)["outcomes"] == ["baseline"] + ["billed"] * 4
    assert tariffs.main([*args, "--rated-kw", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcomes"] == ["baseline", "implausible_jump", "billed", "billed", "billed"]
    assert result["anomalies"][0]["proposed_fen"] == 160  # shown, not billed
    # and the gap rule's limit: 6 h between readings is allowed, not more
    assert tariffs.main([*args, "--max-gap-hours", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["outcomes"] == ["baseline", "billed", "billed", "gap", "billed"]
