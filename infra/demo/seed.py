"""Demo data: one property, two buildings, 20 rooms, tenants, accounts, meters.

Deterministic: the same ids and amounts every run, so a demo looks the same each time
and tests can name what they expect. Balances move through the ledger (opening balance,
recharges, usage), so balance = sum(entries) holds for the demo data too.
"""

from __future__ import annotations

from core.services import control, directory, tariffs
from core.services.ledger import LedgerService

PROPERTY_ID = "demo-park"
PROPERTY_NAME = "翠湖科技园"
SITE_ID = "demo-site-1"

BUILDINGS = [("A", "A 栋（公寓）", 3, 4), ("B", "B 栋（商铺）", 2, 4)]  # id, name, floors, rooms/floor

SURNAMES = "王李张刘陈杨黄赵吴周孙马朱胡郭何高林罗郑"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"


PLANS = [
    {
        "plan_id": "demo-residential",
        "name": "居民阶梯电价",
        "utility": "electricity",
        "versions": [{
            "effective_from": "2026-01-01T00:00:00+08:00",
            "prices": {"flat": "0.5283"},
            "tiers": {"cycle": "month", "bands": [{"up_to": "200", "surcharge": "0"},
                                                  {"up_to": "400", "surcharge": "0.0500"},
                                                  {"up_to": None, "surcharge": "0.3000"}]},
        }],
    },
    {
        "plan_id": "demo-commercial-tou",
        "name": "商铺分时电价",
        "utility": "electricity",
        "versions": [{
            "effective_from": "2026-01-01T00:00:00+08:00",
            "prices": {"sharp": "1.3520", "peak": "1.1267", "flat": "0.6760", "valley": "0.3100"},
            "schedules": [{"intervals": [
                {"start": "00:00", "end": "08:00", "period": "valley"},
                {"start": "08:00", "end": "11:00", "period": "peak"},
                {"start": "11:00", "end": "13:00", "period": "sharp"},
                {"start": "13:00", "end": "18:00", "period": "flat"},
                {"start": "18:00", "end": "21:00", "period": "peak"},
                {"start": "21:00", "end": "24:00", "period": "flat"}]}],
        }],
    },
    {
        "plan_id": "demo-water",
        "name": "居民用水",
        "utility": "water",
        "versions": [{
            "effective_from": "2026-01-01T00:00:00+08:00",
            "prices": {"flat": "3.4500"},
            "components": [{"code": "sewage", "name": "污水处理费", "price": "0.9500"}],
        }],
    },
]


CROSSING_N = 17  # the room (B-201) that crosses its cut-off line while the demo runs


def seed(ledger: LedgerService | None = None) -> dict:
    ledger = ledger or LedgerService()
    directory.create_property(PROPERTY_ID, PROPERTY_NAME)
    for plan in PLANS:
        tariffs.import_plan(PROPERTY_ID, plan, "seed")
    # no protected night or holidays in the demo: a cut it shows must happen whatever the hour
    # it runs at (the console sets them per property)
    control.set_protection(PROPERTY_ID, {"night": None, "weekends": False, "holidays": False, "grace_minutes": 0})
    site = directory.register_site(PROPERTY_ID, SITE_ID, "1 号配电房网关")
    n = 0
    accounts = []
    wechat_users = []  # (openid, nickname): the tenants' WeChat users, bound as seeded
    for bid, bname, floors, per_floor in BUILDINGS:
        directory.add_building(PROPERTY_ID, bid, bname)
        for level in range(1, floors + 1):
            fid = f"{bid}{level}F"
            directory.add_floor(PROPERTY_ID, bid, fid, f"{level} 层", level)
            for k in range(1, per_floor + 1):
                rid = f"{bid}{level}{k:02d}"
                area = f"{35 + (n * 7) % 60}.{(n * 13) % 100:02d}"
                directory.add_room(PROPERTY_ID, bid, fid, rid, f"{bid}-{level}{k:02d}", area)
                n += 1
                if n % 10 == 0:  # every tenth room stands empty
                    continue
                tid = f"t-{rid}"
                name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n * 7) % len(GIVEN)]
                directory.register_tenant(PROPERTY_ID, tid, name, f"138{n:08d}")
                directory.bind_openid(tid, f"demo-openid-{rid}")  # as if the tenant had bound WeChat
                wechat_users.append((f"demo-openid-{rid}", name))
                aid = f"acct-{rid}"
                opening = 20000 + (n * 3137) % 30000  # 200.00 .. 499.99 yuan
                directory.open_account(
                    PROPERTY_ID, aid, bid, rid, tid, f"{rid} {name}",
                    opening_balance=opening, overdraft_limit=2000 if bid == "B" else 1000,
                    actor="seed",
                )
                kind = "electric_3p" if bid == "B" else "electric_1p"
                model = "acrel-dtsy1352" if bid == "B" else "acrel-ddsy1352"
                directory.add_meter(PROPERTY_ID, f"E-{rid}", aid, SITE_ID, kind, model, f"bus-{bid}", n,
                                    rated_kw="60" if bid == "B" else "10")
                tariffs.assign(PROPERTY_ID, f"E-{rid}", "demo-commercial-tou" if bid == "B" else "demo-residential")
                if bid == "A":
                    directory.add_meter(PROPERTY_ID, f"W-{rid}", aid, SITE_ID, "water", "generic-valve-water", "bus-W", n,
                                        rated_kw="1")
                    tariffs.assign(PROPERTY_ID, f"W-{rid}", "demo-water")
                # A month of usage; every fifth account has used more than it paid.
                usage = opening + 150 * (n % 6 + 1) if n % 5 == 3 else (n * 977) % opening
                if n in (3, 14):  # two tenants beyond their overdraft: supply is cut at the next reading
                    usage = opening + 2500
                if n == CROSSING_N:  # 0.20 yuan above the cut-off line: its meter takes it across in seconds
                    usage = opening + 2000 - 20
                ledger.post(
                    account_id=aid, entry_id=f"use:E-{rid}:seed", kind="energy", amount=usage,
                    cause=f"seed:usage:{rid}", actor="seed",
                )
                if n % 4 == 0:
                    ledger.post(
                        account_id=aid, entry_id=f"pay:seed-{rid}", kind="recharge", amount=10000,
                        cause=f"seed:recharge:{rid}", actor="seed",
                    )
                accounts.append(aid)
                if n == CROSSING_N:
                    crossing = (f"{bid}-{level}{k:02d}", aid)
    ctl = control.Control(ledger)
    for aid in accounts:  # the seed wrote balances directly: let the policy look at each once
        ctl.evaluate(aid, "seed")
    return {"property_id": PROPERTY_ID, "rooms": n, "accounts": accounts, "site": site.site_id,
            "crossing": {"room": crossing[0], "account": crossing[1], "openid": f"demo-openid-{crossing[1][5:]}"},
            "wechat_users": wechat_users,
            "secret": site.secret, "down_queue": site.down_queue}


# The demo's console login (public, like every demo value: a deployment makes its own
# owner with `python -m cli.admins create-owner`).
COMPANY_ID = "demo-co"
COMPANY_NAME = "翠湖物业管理有限公司"
ADMIN_LOGIN = "demo@feikong.local"
ADMIN_NAME = "演示管理员"
ADMIN_PASSWORD = "feikong-2026-console"


def seed_admin() -> dict:
    """The demo company holds the demo property; its owner logs in with ADMIN_LOGIN /
    ADMIN_PASSWORD (made once: the emulator starts empty)."""
    from core.domain.errors import Conflict
    from core.services.admin_auth import AdminAuth

    auth = AdminAuth()
    auth.ensure_company(COMPANY_ID, COMPANY_NAME)
    auth.add_property(COMPANY_ID, PROPERTY_ID)
    try:
        auth.create_admin(COMPANY_ID, ADMIN_LOGIN, ADMIN_NAME, "owner", ADMIN_PASSWORD)
    except Conflict:
        pass  # made by an earlier run against the same emulator
    return {"login": ADMIN_LOGIN, "password": ADMIN_PASSWORD}
