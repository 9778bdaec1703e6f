"""The room monitor's tile rules (core/domain/monitor.py), on hand-worked cases.

Precedence: cut > arrears > offline > low (by alarm level) > protected > normal; vacant is
a room without an open account. Default alarm amounts: 50 / 20 / 0 yuan."""

import pytest

from core.domain import monitor as m

ROOM = m.RoomRef("A", "F01", "A0101", "101")


def account(balance, **kw):
    base = dict(account_id="a1", building_id="A", room_id="A0101", tenant_id="t1", name="101", status="OPEN",
                balance=balance)
    return m.AccountSnapshot(**{**base, **kw})


def meter(relay="closed", online=True, **kw):
    return m.MeterSnapshot(**{"meter_id": kw.pop("meter_id", "m1"), "account_id": "a1", "kind": "electric_1p",
                              "relay_state": relay, "online": online, **kw})


def tile(balance, meters=(), **kw):
    return m.account_tile(ROOM, account(balance, **kw), list(meters), "张三", "13900000001")


@pytest.mark.parametrize("balance, levels, level", [
    (5000, None, 0),  # at 50 yuan exactly: not below the first amount
    (4999, None, 1),
    (2000, None, 1),  # at 20 yuan: below 50 only
    (1999, None, 2),
    (0, None, 2),  # zero is not below the 0 amount
    (-1, None, 3),
    (2500, (3000,), 1),  # the account's own amounts
    (3000, (3000,), 0),
    (500, (10000, 5000, 1000), 3),
])
def test_alarm_level_counts_the_amounts_the_balance_is_below(balance, levels, level):
    assert m.alarm_level(balance, levels) == level


def test_normal():
    t = tile(12345, [meter()])
    assert (t.state, t.relay, t.online, t.in_flight, t.alarm_level, t.flags) == ("normal", "closed", True, False, 0,
                                                                                  frozenset())
    assert t.balance == 12345 and t.tenant_name == "张三" and t.label == "正常"


def test_low_by_level():
    assert (tile(4000, [meter()]).state, tile(4000, [meter()]).alarm_level) == ("low", 1)
    t = tile(1500, [meter()])
    assert (t.state, t.alarm_level, t.label, t.flags) == ("low", 2, "余额不足 2 级", frozenset({"low"}))
    # the account's own amounts: 80 yuan is below 100 yuan
    assert tile(8000, [meter()], alarm_levels=(10000,)).state == "low"


def test_arrears_beats_low_and_zero_is_not_arrears():
    t = tile(-1, [meter()])
    assert (t.state, t.flags, t.alarm_level) == ("arrears", frozenset({"arrears"}), 0)
    assert tile(0, [meter()]).state == "low"  # 0 is below 50 and 20 yuan, not in arrears


def test_cut_beats_arrears_and_offline():
    t = tile(-3000, [meter(relay="open", online=False)], cut_state="cut")
    assert t.state == "cut" and t.flags == frozenset({"cut", "arrears", "offline"})
    assert t.relay == "open"


def test_cut_when_ordered_even_before_the_relay_reads_back_open():
    t = tile(-100, [meter(relay="closed", in_flight=True)], cut_state="cut")
    assert (t.state, t.relay, t.in_flight) == ("cut", "closed", True)


def test_a_relay_read_back_open_is_cut_whatever_the_balance():
    assert tile(50000, [meter(relay="open")]).state == "cut"  # a manual trip


def test_offline_beats_low_and_protected():
    assert tile(1000, [meter(online=False)]).state == "offline"
    assert tile(9000, [meter(online=False)], keep_supply=True).state == "offline"
    # one of two meters offline is enough
    assert tile(9000, [meter(), meter(meter_id="m2", online=False)]).state == "offline"


def test_protected_by_the_account_or_a_meter_but_low_beats_it():
    assert tile(9000, [meter()], keep_supply=True).state == "protected"
    assert tile(9000, [meter(keep_supply=True)]).state == "protected"
    t = tile(4000, [meter()], keep_supply=True)
    assert t.state == "low" and t.protected  # shown as a badge
    # arrears on a keep-supply account: the money still matters most (supply is not cut)
    assert tile(-500, [meter()], keep_supply=True).state == "arrears"


def test_relay_summary():
    assert m.relay_summary([]) == "unknown"
    assert m.relay_summary([meter(), meter(relay="unknown")]) == "unknown"
    assert m.relay_summary([meter(), meter(relay="open")]) == "open"
    assert m.relay_summary([meter(), meter()]) == "closed"


def test_retired_meters_do_not_count():
    t = tile(9000, [meter(), meter(meter_id="old", relay="open", online=False, retired=True)])
    assert (t.state, t.meters, t.relay, t.online) == ("normal", 1, "closed", True)


def test_no_meter_is_neither_online_nor_offline():
    t = tile(9000, [])
    assert (t.state, t.online, t.relay, t.meters) == ("normal", None, "unknown", 0)


def test_vacant_without_an_open_account_and_one_tile_per_open_account():
    closed = account(100, status="CLOSED")
    assert [t.state for t in m.room_tiles(ROOM, [closed], {}, {})] == ["vacant"]
    assert [t.state for t in m.room_tiles(ROOM, [], {}, {})] == ["vacant"]
    two = [account(-5, account_id="a2"), account(9000, account_id="a1")]
    tiles = m.room_tiles(ROOM, two, {"a1": [meter()]}, {"t1": ("李四", "13900000002")})
    assert [(t.account_id, t.state, t.tenant_name) for t in tiles] == [("a1", "normal", "李四"), ("a2", "arrears", "李四")]


def test_filters_match_any_chosen_chip():
    cut_in_arrears = tile(-3000, [meter(relay="open")], cut_state="cut")
    low = tile(1000, [meter()])
    vacant = m.vacant_tile(ROOM)
    assert m.matches(cut_in_arrears, frozenset({"arrears"}), "")
    assert m.matches(cut_in_arrears, frozenset({"cut"}), "")
    assert not m.matches(low, frozenset({"arrears", "cut"}), "")
    assert m.matches(low, frozenset({"arrears", "low"}), "")
    assert m.matches(vacant, frozenset({"vacant"}), "") and not m.matches(vacant, frozenset({"low"}), "")
    assert all(m.matches(t, frozenset(), "") for t in (cut_in_arrears, low, vacant))


def test_search_by_room_tenant_or_phone():
    t = tile(9000, [meter()])
    for q in ("101", "a0101", "张三", "张", "13900000001", "0000001"):
        assert m.matches(t, frozenset(), m.normalise_query(q)), q
    assert not m.matches(t, frozenset(), m.normalise_query("李四"))
    assert not m.matches(m.vacant_tile(ROOM), frozenset(), "张三")
    assert m.normalise_query("  A0101 ") == "a0101"


def test_unknown_filters_are_refused():
    assert m.parse_filters(["arrears", "", "cut"]) == frozenset({"arrears", "cut"})
    with pytest.raises(ValueError):
        m.parse_filters(["arrears", "everything"])
