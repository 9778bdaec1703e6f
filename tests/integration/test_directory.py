"""The data model and its access patterns against the emulator, including isolation:
an admin scoped to one property never reaches another property's data."""

import pytest

from core.domain.errors import Conflict, NotFound, ValidationError
from core.services import directory as d
from core.services.ledger import LedgerService
from testkit.builders import World, uid


def test_rooms_of_a_building_with_balances(world):
    a1 = world.account(opening=1500)
    a2 = world.account(opening=-200)
    d.add_room(world.property_id, "B1", "F1", "R900", "空房", "20.5")
    rows = d.rooms_with_balances(world.property_id, "B1")
    assert [r["room"].room_id for r in rows] == ["R001", "R002", "R900"]
    assert [r["balance"] for r in rows] == [1500, -200, 0]
    assert [a.account_id for r in rows for a in r["accounts"]] == [a1, a2]
    assert rows[2]["room"].area_m2 == "20.50"


def test_balances_shown_are_current_after_postings(world):
    a = world.account(opening=1000)
    LedgerService().post(account_id=a, entry_id="use:1", kind="energy", amount=300, cause="t", actor="t")
    assert d.rooms_with_balances(world.property_id, "B1")[0]["balance"] == 700


def test_one_account_many_meters_and_one_tenant_many_accounts(world):
    a1, a2 = world.account(opening=0), world.account(opening=0)
    site = d.register_site(world.property_id, uid("s"), "网关")
    d.add_meter(world.property_id, uid("E"), a1, site.site_id, "electric_1p", "acrel-ddsy1352", "bus1", 1)
    d.add_meter(world.property_id, uid("W"), a1, site.site_id, "water", "generic-valve-water", "bus1", 2)
    d.add_meter(world.property_id, uid("E"), a2, site.site_id, "electric_3p", "acrel-dtsy1352", "bus1", 3)
    kinds = sorted(m.kind for m in d.meters_of_account(world.property_id, a1))
    assert kinds == ["electric_1p", "water"]
    assert {a.account_id for a in d.accounts_of_tenant(world.tenant_id)} == {a1, a2}
    with pytest.raises(Conflict):  # two meters cannot share an address on one bus
        d.add_meter(world.property_id, uid("E"), a2, site.site_id, "electric_1p", "acrel-ddsy1352", "bus1", 3)
    with pytest.raises(ValidationError):
        d.add_meter(world.property_id, uid("E"), a2, site.site_id, "electric_1p", "acrel-ddsy1352", "bus1", 248)


def test_site_gets_a_secret_and_its_own_down_queue(world):
    import boto3

    site = d.register_site(world.property_id, uid("s"), "网关")
    assert len(site.secret) >= 40
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=site.down_queue, AttributeNames=["FifoQueue"])
    assert attrs["Attributes"]["FifoQueue"] == "true"
    assert site.down_queue.endswith(f"site-{site.site_id}-down.fifo")


def test_find_tenant_by_openid_across_properties(world):
    other = World()
    openid = uid("o")
    d.bind_openid(world.tenant_id, openid)
    d.bind_openid(other.tenant_id, openid)
    found = d.tenants_for_openid(openid)
    assert {t.property_id for t in found} == {world.property_id, other.property_id}
    assert d.tenants_for_openid(uid("nobody")) == []


def test_accounts_below_a_balance(world):
    low = world.account(opening=-500)
    mid = world.account(opening=1000)
    world.account(opening=90_000)
    assert [a.account_id for a in d.accounts_below(world.property_id, 0)] == [low]
    assert [a.account_id for a in d.accounts_below(world.property_id, 5000)] == [low, mid]


def test_admin_of_one_property_cannot_reach_another(world):
    other = World()
    theirs = other.account(opening=777)
    with pytest.raises(NotFound):
        d.account_in_property(world.property_id, theirs)
    with pytest.raises(NotFound):
        d.meters_of_account(world.property_id, theirs)
    with pytest.raises(NotFound):  # their building id is the same string, but not ours to list
        d.rooms_with_balances(uid("p"), "B1")
    assert all(r["accounts"] == [] for r in d.rooms_with_balances(world.property_id, "B1"))
    assert theirs not in [a.account_id for a in d.accounts_below(world.property_id, 10**6)]
    # an account cannot be opened for another property's tenant
    d.add_room(world.property_id, "B1", "F1", "R777", "R777", "10")
    with pytest.raises(NotFound):
        d.open_account(world.property_id, uid("a"), "B1", "R777", other.tenant_id, "x")


def test_duplicates_and_missing_parents_are_refused(world):
    with pytest.raises(Conflict):
        d.create_property(world.property_id, "again")
    with pytest.raises(NotFound):
        d.add_building(uid("p"), "B2", "x")
    with pytest.raises(NotFound):
        d.add_room(world.property_id, "B9", "F1", "R1", "x", "10")
    with pytest.raises(NotFound):
        d.add_room(world.property_id, "B1", "F9", "R1", "x", "10")
    a = world.account()
    with pytest.raises(Conflict):
        d.open_account(world.property_id, a, "B1", "R001", world.tenant_id, "x")


@pytest.mark.parametrize("area", ["0", "-1", "abc", "1.234", None, True])
def test_bad_room_area(world, area):
    with pytest.raises(ValidationError):
        d.add_room(world.property_id, "B1", "F1", uid("R"), "x", area)


def test_bad_phone(world):
    with pytest.raises(ValidationError):
        d.register_tenant(world.property_id, uid("t"), "李四", "12345")
