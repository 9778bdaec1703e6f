import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from bridge.config import ConfigError, load_config, parse_config
from bridge.outbox import Outbox, OutboxFull
from bridge.profiles import all_profiles
from bridge.runtime import backoff_seconds

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "bridge.example.yaml"
GOOD = yaml.safe_load(EXAMPLE.read_text())
GOOD["secret"] = "s" * 40


def test_the_documented_example_is_valid():
    c = parse_config(GOOD)
    assert [b.name for b in c.buses] == ["bus-A", "bus-B"]
    assert c.buses[1].framing == "rtu" and c.buses[1].meters[1].meter_side
    assert c.silent_recheck_seconds == 120


def test_silent_recheck_defaults_to_two_minutes():
    doc = copy.deepcopy(GOOD)
    doc.pop("silent_recheck_seconds", None)
    assert parse_config(doc).silent_recheck_seconds == 120
    doc["silent_recheck_seconds"] = 300
    assert parse_config(doc).silent_recheck_seconds == 300


@pytest.mark.parametrize("poll,failures,cap,expected", [
    (60, 1, 120, 60),      # first miss: the poll interval
    (60, 2, 120, 120),     # doubled
    (60, 3, 120, 120),     # 240 capped at 120
    (60, 12, 120, 120),    # 1920 (x32) capped at 120
    (10, 4, 120, 80),      # 10 x 8, under the cap
    (10, 9, 3600, 320),    # x32 is the most the back-off ever reaches
    (300, 5, 120, 300),    # a meter polled less often than the cap keeps its own interval
])
def test_backoff_is_capped_by_the_silent_recheck(poll, failures, cap, expected):
    assert backoff_seconds(poll, failures, cap) == expected


@pytest.mark.parametrize("path,value,field", [
    (("secret",), "short", "config.secret"),
    (("previous_secret",), "short", "config.previous_secret"),
    (("previous_secret",), "s" * 40, "config.previous_secret"),  # the same as the current one
    (("cloud", "down_queue_url"), "https://sqs.example/q", "config.cloud.down_queue_url"),
    (("cloud", "uplink_queue_url"), "ftp://x", "config.cloud.uplink_queue_url"),
    (("buses", 0, "type"), "usb", "config.buses[0].type"),
    (("buses", 0, "baudrate"), 9601, "config.buses[0].baudrate"),
    (("buses", 0, "meters", 1, "address"), 1, "config.buses[0].meters[1].address"),
    (("buses", 0, "meters", 0, "address"), 300, "config.buses[0].meters[0].address"),
    (("buses", 0, "meters", 0, "model"), "no-such-meter", "config.buses[0].meters[0].model"),
    (("buses", 1, "meters", 0, "meter_id"), "E-A101", "config.buses[1].meters[0].meter_id"),
    (("buses", 1, "framing"), "ascii", "config.buses[1].framing"),
    (("silent_recheck_seconds",), 0, "config.silent_recheck_seconds"),
    (("silent_recheck_seconds",), 7200, "config.silent_recheck_seconds"),
    (("silent_recheck_seconds",), "2m", "config.silent_recheck_seconds"),
    (("silent_recheck_seconds",), True, "config.silent_recheck_seconds"),
])
def test_a_wrong_config_names_the_bad_field(path, value, field):
    doc = copy.deepcopy(GOOD)
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    assert str(e.value).startswith(field)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("site_id: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_profiles_merge_neighbouring_reads():
    p = all_profiles()["acrel-ddsy1352"]
    blocks = p.blocks(p.poll)
    assert [(b.start, b.count) for b in blocks] == [(0x0000, 17), (0x0059, 1)]
    assert p.registers["total"].decode([0x0001, 0xE240]) == Decimal("1234.56")
    assert p.registers["power"].decode([0xFFFF]) == Decimal("-0.001")
    assert p.write_words("TRIP", {}) == (0x0057, [1, 1])
    assert p.write_words("RECHARGE", {"amount": 70000, "purchase_count": 3}) == (0x0064, [1, 4464, 3])
    assert any(r.guessed for r in p.registers.values())


def test_outbox_keeps_order_and_survives_reopen(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3", capacity=100)
    for i in range(5):
        box.put("readings", {"n": i}, seq_updates={"m1": i + 1})
    assert [json.loads(b)["n"] for _, _, b in box.peek(3)] == [0, 1, 2]
    box.ack([r[0] for r in box.peek(2)])
    box.close()
    again = Outbox(tmp_path / "o.sqlite3", capacity=100)
    assert [json.loads(b)["n"] for _, _, b in again.peek(10)] == [2, 3, 4]
    assert again.next_seq("m1") == 6


def test_outbox_capacity_drops_readings_never_command_results(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3", capacity=100)
    box.put("command_result", {"id": "c1"}, command=("c1", "m1", {"status": "applied"}))
    for i in range(150):
        box.put("readings", {"n": i})
    kinds = [k for _, k, _ in box.peek(200)]
    assert len(kinds) == 100 and kinds[0] == "command_result" and box.dropped == 51
    assert box.command_done("c1") == {"status": "applied"}
    full = Outbox(tmp_path / "f.sqlite3", capacity=100)
    for i in range(100):
        full.put("meter_event", {"n": i})
    with pytest.raises(OutboxFull):
        full.put("command_result", {"x": 1})


@pytest.mark.parametrize("site_id", ["A#x", "s/1", "s 1", "s|1", "", "x" * 65])
def test_site_id_follows_the_clouds_id_rule(site_id):
    doc = copy.deepcopy(GOOD)
    doc["site_id"] = site_id
    with pytest.raises(ConfigError, match="site_id"):
        parse_config(doc)
