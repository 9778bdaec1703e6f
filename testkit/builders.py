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


class Estate:
    """A property of buildings x floors x rooms, every room with a tenant, an open account
    and a meter in one of the states of `PATTERN` (room i takes PATTERN[i % len]); the
    room monitor's tests and bench/console.py read it.

    The property, buildings and floors are made through core.services; the rooms, tenants,
    accounts (with their opening entry) and meters are written in batches of the items
    the store itself writes (a thousand rooms in seconds, not minutes): a snapshot of the
    states, not the history that led to them (no commands behind an in-flight marker)."""

    # (state the room monitor should show, how the room is set up), worked by hand:
    # balances in fen against the default alarm amounts 50 / 20 / 0 yuan
    PATTERN = (
        ("vacant", {"vacant": True}),
        ("arrears", {"balance": -1500}),
        ("cut", {"balance": -3000, "cut_state": "cut", "relay": "open"}),
        ("offline", {"balance": 10000, "online": False}),
        ("low", {"balance": 3000}),  # below 50 yuan: level 1
        ("low", {"balance": 1000}),  # below 20 yuan: level 2
        ("protected", {"balance": 8000, "keep_supply": True}),
        ("normal", {"balance": 20000, "in_flight": True}),
        ("normal", {"balance": 6000, "relay": "unknown"}),
        ("normal", {"balance": 12345}),
    )

    def __init__(self, buildings: int = 4, floors: int = 10, rooms_per_floor: int = 25,
                 property_id: str | None = None) -> None:
        from core.services import directory

        self.property_id = property_id or uid("p")
        directory.create_property(self.property_id, "监控测试物业")
        self.building_ids = [chr(ord("A") + b) for b in range(buildings)]
        self.rooms: list[dict] = []  # per room: ids, names, tenant, account, meter, expected state
        for b in self.building_ids:
            directory.add_building(self.property_id, b, f"{b} 栋")
            for f in range(1, floors + 1):
                directory.add_floor(self.property_id, b, f"F{f:02d}", f"{f} 层", f)
                for r in range(1, rooms_per_floor + 1):
                    i = len(self.rooms)
                    state, setup = self.PATTERN[i % len(self.PATTERN)]
                    self.rooms.append({
                        "i": i, "building_id": b, "floor_id": f"F{f:02d}", "room_id": f"{b}{f:02d}{r:02d}",
                        "name": f"{f}{r:02d}", "tenant": f"租户{i:04d}", "phone": f"139{i:08d}",
                        "tenant_id": f"t-{self.property_id}-{i}", "account_id": f"a-{self.property_id}-{i}",
                        "meter_id": f"m-{self.property_id}-{i}", "state": state, "setup": setup,
                    })
        self._write()

    def _write(self) -> None:
        from datetime import UTC, datetime

        from core.domain.directory import Account
        from core.domain.ledger import format_time
        from core.domain.monitor import RELAY_CLOSED
        from core.store.directory import account_item
        from core.store.models import AccountItem, DirectoryItem, LedgerEntryItem, MeterItem, TenantItem

        now = format_time(datetime.now(UTC))
        p = self.property_id
        with DirectoryItem.batch_write() as rooms, TenantItem.batch_write() as tenants, \
                AccountItem.batch_write() as accounts, LedgerEntryItem.batch_write() as entries, \
                MeterItem.batch_write() as meters:
            for r in self.rooms:
                b, s = r["building_id"], r["setup"]
                rooms.save(DirectoryItem(p, f"ROOM#{b}#{r['room_id']}", kind="room", name=r["name"], building_id=b,
                                         floor_id=r["floor_id"], room_id=r["room_id"], area_m2="30.00"))
                if s.get("vacant"):
                    continue
                tenants.save(TenantItem(r["tenant_id"], property_id=p, name=r["tenant"], phone=r["phone"]))
                balance = s["balance"]
                item = account_item(Account(r["account_id"], p, b, r["room_id"], r["tenant_id"], r["name"], balance, 1,
                                            keep_supply=s.get("keep_supply", False), opened_at=now), now)
                item.cut_state = s.get("cut_state", "none")
                accounts.save(item)
                entries.save(LedgerEntryItem(r["account_id"], f"open:{r['account_id']}", seq=1, kind="opening",
                                             amount=balance, balance_after=balance, cause=f"account:{r['account_id']}",
                                             actor="estate", posted_at=now, property_id=p))
                online = s.get("online", True)
                meters.save(MeterItem(
                    r["meter_id"], property_id=p, account_id=r["account_id"], site_id=f"s-{p}", kind="electric_1p",
                    model="acrel-ddsy1352", bus=f"bus-{b}", address=r["i"] % 247 + 1, billing_mode="cloud",
                    rated_kw="10", relay_state=s.get("relay", RELAY_CLOSED), online=online,
                    online_key="ON" if online else None, last_seen=now if online else None,
                    relay_command_id=f"trip-{r['meter_id']}-1" if s.get("in_flight") else None))
