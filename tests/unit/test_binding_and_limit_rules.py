"""Rules of bindings and rate limits (core/domain/memberships.py, core/domain/limits.py) and
the deploy configuration's API Gateway throttle (infra/deploy/zappa_stage.py), with
hand-worked values."""

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.domain import limits, memberships
from core.domain.errors import ValidationError
from infra.deploy import deploy_check, zappa_stage

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", ["ABCDEFGH", "abcd-efgh", " ABCD-EFGH ", "feikong://bind?code=ABCDEFGH",
                                  "feikong://bind?code=abcd-efgh", "FEIKONG://bind?code=ABCDEFGH"])
def test_a_code_as_typed_or_as_the_qr_reads(text):
    assert memberships.binding_code_from_text(text) == "ABCDEFGH"


@pytest.mark.parametrize("text", ["", "ABCDEFG", "ABCDEFGH1", "ABCDEFGI", "feikong://bind?code=", "feikong://bind",
                                  "https://x.test/bind?code=ABCDEFGH", None, 12345678])
def test_anything_else_is_not_a_code(text):
    with pytest.raises(ValidationError) as e:
        memberships.binding_code_from_text(text)
    assert e.value.code == "binding_code_invalid"


def test_names_and_ids_never_show_the_openid():
    openid = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
    label = memberships.display_name(openid, None)
    assert label.startswith("微信用户 ") and len(label) == 9 and openid[-4:] not in label
    assert memberships.display_name(openid, "  小王\u0000 ") == "小王"
    assert memberships.display_name(openid, "\u200b\n") == label  # nothing printable: the label
    assert memberships.clean_nickname("长" * 40) == "长" * 32
    assert memberships.member_id("a1", openid) != memberships.member_id("a2", openid)  # per account
    assert len(memberships.member_id("a1", openid)) == 16 and openid not in memberships.actor_id(openid)


def test_fixed_windows_by_hand():
    rule = limits.Rule("login_ip", 3, 60)
    t = datetime(2026, 11, 29, 8, 0, 59, 500_000, tzinfo=UTC)  # 1795939259.5
    w = limits.window(rule, t)
    assert (w.start, w.end) == (1795939200, 1795939260)
    assert limits.retry_after(w, t) == 1  # 0.5 s left, rounded up
    assert limits.retry_after(w, datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)) == 60
    key = limits.counter_key(rule, "203.0.113.7", w)
    assert key.startswith("login_ip#") and key.endswith("#1795939200") and "203.0.113.7" not in key
    assert limits.counter_key(rule, "203.0.113.8", w) != key


def test_the_client_address_is_the_entry_before_our_proxies():
    # API Gateway (edge-optimized): "<what the client sent>, <client>, <CloudFront>"
    assert limits.client_ip("203.0.113.7, 130.176.0.10", "10.0.0.1", 1) == "203.0.113.7"
    assert limits.client_ip("1.2.3.4, 203.0.113.7, 130.176.0.10", "10.0.0.1", 1) == "203.0.113.7"
    assert limits.client_ip("203.0.113.7", "10.0.0.1", 0) == "203.0.113.7"  # a regional API
    assert limits.client_ip("203.0.113.7", "10.0.0.1", 1) == "10.0.0.1"  # too few entries: the socket
    assert limits.client_ip(None, "127.0.0.1", 1) == "127.0.0.1"
    assert limits.client_ip(" , ", None, 1) is None


def test_the_zappa_stage_is_throttled_by_its_post_deploy_callback():
    cfg = json.loads((ROOT / "zappa_settings.json").read_text())["dev"]
    assert deploy_check.zappa_throttling_problems(cfg) == []
    assert zappa_stage.patch_operations(cfg) == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"}]
    no_callback = {k: v for k, v in cfg.items() if k != "callbacks"}
    assert any("callbacks.post" in p for p in deploy_check.zappa_throttling_problems(no_callback))
    assert deploy_check.zappa_throttling_problems({**cfg, "feikong_stage_throttling": None}) == [
        "feikong_stage_throttling is missing"]
    low_burst = {**cfg, "feikong_stage_throttling": {"rate_limit": 100, "burst_limit": 50}}
    assert deploy_check.zappa_throttling_problems(low_burst) == [
        "feikong_stage_throttling.burst_limit must be at least rate_limit"]
    with pytest.raises(ValueError):
        zappa_stage.patch_operations({"feikong_stage_throttling": {"rate_limit": 0, "burst_limit": 1}})


def test_zappa_can_load_the_callback_by_its_path():
    # zappa imports `callbacks.post` as a file of the working directory, outside any package
    spec = importlib.util.spec_from_file_location("zappa_stage", ROOT / "infra" / "deploy" / "zappa_stage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.apply_stage_settings)
