"""Bad input is refused with a clear error and writes nothing."""

import pytest

from core.domain.errors import FeikongError
from core.services.ledger import LedgerService
from core.store.models import LedgerEntryItem
from testkit.builders import uid

GOOD = {"entry_id": "pay:ok", "kind": "recharge", "amount": 100, "cause": "test", "actor": "tester"}


@pytest.mark.parametrize(
    "change,code,status",
    [
        ({"amount": 1.5}, "amount_not_integer", 400),
        ({"amount": "100"}, "amount_not_integer", 400),
        ({"amount": True}, "amount_not_integer", 400),
        ({"amount": None}, "amount_not_integer", 400),
        ({"amount": -100}, "amount_not_positive", 400),
        ({"amount": 0}, "amount_not_positive", 400),
        ({"amount": 10**13}, "amount_too_large", 400),
        ({"entry_id": ""}, "id_empty", 400),
        ({"entry_id": None}, "id_empty", 400),
        ({"entry_id": "white space"}, "id_invalid", 400),
        ({"kind": "gift"}, "kind_invalid", 400),
        ({"kind": "opening"}, "kind_not_postable", 400),
        ({"cause": ""}, "field_required", 400),
        ({"actor": ""}, "field_required", 400),
        ({"occurred_at": "yesterday"}, "time_invalid", 400),
    ],
)
def test_refused_and_nothing_written(world, change, code, status):
    a = world.account(opening=5000)
    ledger = LedgerService()
    before = ledger.verify(a)
    fields = {**GOOD, **change, "account_id": a}
    with pytest.raises(FeikongError) as e:
        ledger.post(**fields)
    assert (e.value.code, e.value.status) == (code, status)
    assert e.value.message  # a sentence for a person
    body = e.value.to_body()["error"]
    assert body["code"] == code and body["message"]
    after = ledger.verify(a)
    assert (after["balance"], after["entries"], after["version"]) == (before["balance"], before["entries"], before["version"])
    if isinstance(fields["entry_id"], str) and fields["entry_id"]:
        assert LedgerEntryItem.count(a, LedgerEntryItem.entry_id == fields["entry_id"]) == 0


def test_unknown_account_is_refused_and_writes_nothing(aws):
    ghost = uid("ghost")
    with pytest.raises(FeikongError) as e:
        LedgerService().post(account_id=ghost, **GOOD)
    assert (e.value.code, e.value.status) == ("account_not_found", 404)
    assert LedgerEntryItem.count(ghost) == 0


@pytest.mark.parametrize("bad", ["", None, "a b", "x" * 300])
def test_bad_account_id_is_refused(aws, bad):
    with pytest.raises(FeikongError) as e:
        LedgerService().post(**{**GOOD, "account_id": bad})
    assert e.value.status == 400


# --- the id rule, on every service that takes an id from outside -------------------------------

BAD_IDS = ["A#x", "#", "a|b", "a/b", "a b", "a\n", "a\x00b", "a\tb", "房间", "-lead", "x" * 65, "", None, 7]


def _snapshot(world) -> tuple:
    """Everything the directory services could write for this world's property."""
    from core.store.models import AccountItem, DirectoryItem, SiteItem, TenantItem

    return (DirectoryItem.count(world.property_id), TenantItem.by_property.count(world.property_id),
            AccountItem.by_property_balance.count(world.property_id), SiteItem.by_property.count(world.property_id))


def _directory_calls(w):
    from core.services import directory as d
    from core.services.payments import Payments

    account = w.account()
    site = w.d.register_site(w.property_id, uid("s"), "网关")
    return {
        "property_id": lambda bad: d.create_property(bad, "物业"),
        "building_id": lambda bad: d.add_building(w.property_id, bad, "楼"),
        "floor_id": lambda bad: d.add_floor(w.property_id, "B1", bad, "层", 2),
        "room_id": lambda bad: d.add_room(w.property_id, "B1", "F1", bad, "房", "30"),
        "tenant_id": lambda bad: d.register_tenant(w.property_id, bad, "租户", "13800000001"),
        "account_id": lambda bad: d.open_account(w.property_id, bad, "B1", "R001", w.tenant_id, "户"),
        "site_id": lambda bad: d.register_site(w.property_id, bad, "网关"),
        "meter_id": lambda bad: d.add_meter(w.property_id, bad, account, site.site_id, "electric_1p",
                                            "acrel-ddsy1352", "bus1", 9),
        "openid": lambda bad: d.bind_openid(w.tenant_id, bad),
        "rooms of building_id": lambda bad: d.rooms_with_balances(w.property_id, bad),
        "account_id of property": lambda bad: d.account_in_property(w.property_id, bad),
        "payments account_id": lambda bad: Payments().counter_recharge(w.property_id, bad, 100, "RC0000001", "cash",
                                                                       "admin"),
        "recharge account_id": lambda bad: Payments().create_recharge("o-openid", bad, 1000),
        "order out_trade_no": lambda bad: Payments().order_for_tenant("o-openid", bad),
    }


def test_every_service_refuses_a_bad_id_with_a_400_and_writes_nothing(world):
    calls = _directory_calls(world)
    before = _snapshot(world)
    for name, call in calls.items():
        for bad in BAD_IDS:
            with pytest.raises(FeikongError) as e:
                call(bad)
            assert e.value.status == 400, (name, bad, e.value.code)
            assert e.value.code in ("id_empty", "id_invalid", "out_no_invalid"), (name, bad, e.value.code)
            assert e.value.message
    assert _snapshot(world) == before


def test_a_building_named_with_a_key_separator_cannot_read_another_buildings_rooms(world):
    """The store keys rooms `ROOM#<building>#<room>` and lists a building's rooms by that
    prefix: were `A#x` a building, building A's list would include its rooms."""
    from core.services import directory as d

    p = world.property_id
    d.add_building(p, "A", "A 栋")
    d.add_floor(p, "A", "A1F", "1 层", 1)
    d.add_room(p, "A", "A1F", "A101", "A-101", "30")
    before = _snapshot(world)
    with pytest.raises(FeikongError) as e:
        d.add_building(p, "A#x", "A#x 栋")
    assert (e.value.code, e.value.details["field"]) == ("id_invalid", "building_id")
    for call in (lambda: d.add_floor(p, "A#x", "1F", "1 层", 1),
                 lambda: d.add_room(p, "A#x", "1F", "R1", "x", "30"),
                 lambda: d.add_room(p, "A", "A1F", "x#A102", "x", "30")):
        with pytest.raises(FeikongError) as e:
            call()
        assert e.value.code == "id_invalid"
    assert _snapshot(world) == before
    assert [r["room"].room_id for r in d.rooms_with_balances(p, "A")] == ["A101"]


@pytest.mark.parametrize("good", ["A", "B1", "acct-A101", "E-A101", "o4GgauInH_RCEdvrrNGrntXDuXXX", "use.1:2@x",
                                  "x" * 64])
def test_ordinary_ids_pass(good):
    from core.domain.naming import require_id

    assert require_id(good, "x") == good
