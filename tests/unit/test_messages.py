from datetime import UTC, datetime

import pytest

from core.protocol import messages as m

T = datetime(2026, 11, 24, 2, tzinfo=UTC)


def test_sign_and_verify():
    msg = m.sign(m.envelope("readings", "s1", "id-1", T, readings=[]), "secret")
    assert m.verify(msg, "secret")
    assert not m.verify(msg, "other-secret")
    tampered = dict(msg, site_id="s2")
    assert not m.verify(tampered, "secret")
    assert not m.verify({k: v for k, v in msg.items() if k != "sig"}, "secret")


def test_decode_refuses_garbage_and_unknown_versions():
    for bad in ["", "not json", "[]", '{"v": 2, "type": "readings", "site_id": "s", "message_id": "x"}',
                '{"v": 1, "type": "other", "site_id": "s", "message_id": "x"}', '{"v": 1, "type": "readings"}']:
        with pytest.raises(m.BadMessage):
            m.decode(bad)


@pytest.mark.parametrize("bad", [
    {"meter_id": "x", "seq": -1, "read_at": T.isoformat(), "total": "1"},
    {"meter_id": "x", "seq": 1, "read_at": "2026-11-24T02:00:00", "total": "1"},  # no zone
    {"meter_id": "x", "seq": 1, "read_at": T.isoformat(), "total": 1.5},  # float
    {"meter_id": "x", "seq": 1, "read_at": T.isoformat(), "total": "-3"},
    {"meter_id": "x", "seq": True, "read_at": T.isoformat(), "total": "1"},
    {"seq": 1, "read_at": T.isoformat(), "total": "1"},
])
def test_bad_readings(bad):
    with pytest.raises(m.BadMessage):
        m.parse_reading(bad)


def test_reading_round_trip():
    r = m.parse_reading({"meter_id": "x", "seq": 3, "read_at": "2026-11-24T10:00:00+08:00", "total": "12.34",
                         "registers": {"peak": "10.00", "valley": 2}, "balance": 500, "purchase_count": 2})
    assert m.parse_reading(m.reading_to_wire(r)) == r
    assert r.read_at == T
