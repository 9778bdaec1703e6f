"""The tenant's words and cursors (core/domain/tenant_view.py), on hand-worked cases."""

from __future__ import annotations

import base64

import pytest

from core.domain import tenant_view as v
from core.domain.errors import ValidationError


def test_alarm_level_counts_the_alarm_amounts_the_balance_is_below():
    # default amounts 50.00 / 20.00 / 0.00 yuan
    assert [v.alarm_level(b, None) for b in (5000, 4999, 2000, 1999, 0, -1)] == [0, 1, 1, 2, 2, 3]
    assert v.alarm_level(100, (200,)) == 1 and v.alarm_level(300, (200,)) == 0


def test_the_restore_line_is_never_below_the_cut_off_line():
    assert v.restore_line(500, 0) == 500
    assert v.restore_line(0, 1000) == 0  # max(0, -1000)
    assert v.restore_line(-500, 1000) == -500
    assert v.restore_line(-2000, 1000) == -1000


def test_supply_in_words():
    cut = v.supply("cut", "", -1500, 1000, 500, False)
    assert (cut.state, cut.text) == ("cut", "已停止供电")
    assert cut.reason == "余额 -15.00 元低于断电线 -10.00 元（可透支 10.00 元）；余额高于 5.00 元后自动恢复供电，请充值"
    # 14:00 UTC is 22:00 in Shanghai
    pending = v.supply("pending", "2026-11-29T14:00:00+00:00", -1, 0, 0, False)
    assert pending.state == "pending" and "预计 2026-11-29 22:00 停止供电" in pending.reason
    kept = v.supply("none", "", -5000, 0, 0, True)
    assert (kept.state, kept.text) == ("on", "正常供电") and "保电" in kept.reason
    assert v.supply("none", "", 12345, 0, 0, False).reason == "余额 123.45 元，高于断电线 0.00 元"


def test_entry_words_name_the_order_and_the_payer():
    assert v.order_of_entry("recharge", "order:R2026112900000001") == "R2026112900000001"
    assert v.order_of_entry("fee", "order:R1") is None
    assert v.entry_payer("recharge", "pay:42000001", "order:R1") == "微信支付"
    assert v.entry_payer("recharge", "cash:RC1", "receipt:RC1") == "物业柜台（现金）"
    assert v.entry_payer("energy", "e:1", "reading:m1:3") is None
    assert v.kind_text("energy") == "电费" and v.order_status_text("PAID") == "已支付"


def test_cursors_round_trip_and_refuse_any_change():
    key = v.cursor_key("server-secret-of-at-least-32-characters")
    c = v.encode_cursor(key, "statement:a-1", ["2026-11-29T01:02:03.000004+00:00", "fee:1"])
    assert v.decode_cursor(key, "statement:a-1", c, 2) == ["2026-11-29T01:02:03.000004+00:00", "fee:1"]
    assert v.decode_cursor(key, "statement:a-1", None, 2) is None
    raw = bytearray(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
    raw[-2] ^= 1  # one bit of the position
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    forged = base64.urlsafe_b64encode(b"\0" * 16 + b'["2030-01-01T00:00:00+00:00","x"]').decode()
    for bad, scope, k, size in [(altered, "statement:a-1", key, 2), (forged, "statement:a-1", key, 2),
                                (c, "statement:a-2", key, 2), (c, "orders:a-1", key, 2),
                                (c, "statement:a-1", v.cursor_key("another-secret-0123456789abcdef"), 2),
                                (c, "statement:a-1", key, 3), ("%%%", "statement:a-1", key, 2),
                                ("A" * 700, "statement:a-1", key, 2)]:
        with pytest.raises(ValidationError) as e:
            v.decode_cursor(k, scope, bad, size)
        assert e.value.code == "cursor_invalid"


def test_page_size():
    assert v.page_size(None) == 20 and v.page_size(100) == 100
    for bad in (0, 101):
        with pytest.raises(ValidationError):
            v.page_size(bad)
