"""Test data builders: a property with one building, floor and room per account (World),
the same with a site, tariff plans and meters (Metered), an injected Clock and uid().
They call core.services as an admin would; the tests and the benchmarks both use them."""

from __future__ import annotations

import uuid


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class World:
    """A property with one building, floor and room per account, for one test."""

    def __init__(self) -> None:
        from core.services import directory

        self.d = directory
        self.property_id = uid("p")
        self.building_id = "B1"
        directory.create_property(self.property_id, "测试物业")
        directory.add_building(self.property_id, self.building_id, "1 号楼")
        directory.add_floor(self.property_id, self.building_id, "F1", "1 层", 1)
        self.tenant_id = uid("t")
        directory.register_tenant(self.property_id, self.tenant_id, "测试租户", "13800000000")
        self.rooms = 0

    def account(self, opening: int = 0, overdraft: int = 0, account_id: str | None = None) -> str:
        self.rooms += 1
        room = f"R{self.rooms:03d}"
        self.d.add_room(self.property_id, self.building_id, "F1", room, room, "30")
        account_id = account_id or uid("a")
        self.d.open_account(
            self.property_id, account_id, self.building_id, room, self.tenant_id, room,
            opening_balance=opening, overdraft_limit=overdraft,
        )
        return account_id


FLAT_PLAN = {
    "plan_id": "flat-1yuan",
    "name": "测试平价",
    "utility": "electricity",
    "versions": [{"effective_from": "2020-01-01T00:00:00+08:00", "prices": {"flat": "1.0000"}}],
}


class Clock:
    """An injected clock: tests move time instead of sleeping through it."""

    def __init__(self, start) -> None:
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**kw)


class Metered(World):
    """A World with a site, a tariff plan and meters on accounts."""

    def __init__(self, plan: dict | None = None, protection: dict | None = None) -> None:
        super().__init__()
        from core.services import control, tariffs

        plan = dict(plan or FLAT_PLAN, plan_id=uid("plan"))
        self.plan_id = tariffs.import_plan(self.property_id, plan, "test").plan_id
        water = dict(FLAT_PLAN, plan_id=uid("water"), utility="water")
        self.water_plan_id = tariffs.import_plan(self.property_id, water, "test").plan_id
        control.set_protection(self.property_id, protection or {"night": None, "weekends": False, "holidays": False})
        self.site = self.d.register_site(self.property_id, uid("s"), "测试网关")
        self.addresses = 0

    def meter(self, account_id: str, kind: str = "electric_1p", billing_mode: str = "cloud", rated_kw: str = "20",
              plan_id: str | None = None) -> str:
        from core.services import tariffs

        self.addresses += 1
        meter_id = uid("m")
        self.d.add_meter(self.property_id, meter_id, account_id, self.site.site_id, kind, "acrel-ddsy1352", "bus1",
                         self.addresses, billing_mode=billing_mode, rated_kw=rated_kw)
        tariffs.assign(self.property_id, meter_id, plan_id or (self.water_plan_id if kind == "water" else self.plan_id))
        return meter_id

    def sim(self):
        from core.integrations.queues import uplink_url
        from infra.fakes.sitesim import SimSite

        return SimSite(self.site.site_id, self.site.secret, self.site.down_queue, uplink_url())
