import json
from pathlib import Path

from infra import tariffs as cli

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_preview_prints_every_charge_with_its_breakdown(capsys):
    assert cli.main(["preview", str(EXAMPLES / "plan-commercial-tou.json"), str(EXAMPLES / "readings.json")]) == 0
    out = capsys.readouterr().out
    assert "计费 1.60 元" in out and "峰时段" in out and "谷时段" in out and "合计 7.86 元" in out


def test_preview_json_and_check(capsys):
    assert cli.main(["preview", "--json", str(EXAMPLES / "plan-water.json"), str(EXAMPLES / "readings.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {line["label"] for c in result["charges"] for line in c["lines"]} == {"水量", "污水处理费"}
    for name in ("plan-commercial-tou.json", "plan-residential-tiered.json", "plan-water.json"):
        assert cli.main(["check", str(EXAMPLES / name)]) == 0


def test_a_broken_plan_is_reported_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"plan_id": "x", "name": "x", "utility": "gas", "versions": []}))
    assert cli.main(["check", str(bad)]) == 1
    assert "utility" in capsys.readouterr().err
