"""Demo data: one property, two buildings, 20 rooms, tenants, accounts, meters.

Deterministic: the same ids and amounts every run, so a demo looks the same each time
and tests can name what they expect. Balances move through the ledger (opening balance,
recharges, usage), so balance = sum(entries) holds for the demo data too.
"""

from __future__ import annotations

from core.services import directory
from core.services.ledger import LedgerService

PROPERTY_ID = "demo-park"
PROPERTY_NAME = "翠湖科技园"
SITE_ID = "demo-site-1"

BUILDINGS = [("A", "A 栋（公寓）", 3, 4), ("B", "B 栋（商铺）", 2, 4)]  # id, name, floors, rooms/floor

SURNAMES = "王李张刘陈杨黄赵吴周孙马朱胡郭何高林罗郑"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"


def seed(ledger: LedgerService | None = None) -> dict:
    ledger = ledger or LedgerService()
    directory.create_property(PROPERTY_ID, PROPERTY_NAME)
    site = directory.register_site(PROPERTY_ID, SITE_ID, "1 号配电房网关")
    n = 0
    accounts = []
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
                aid = f"acct-{rid}"
                opening = 20000 + (n * 3137) % 30000  # 200.00 .. 499.99 yuan
                directory.open_account(
                    PROPERTY_ID, aid, bid, rid, tid, f"{rid} {name}",
                    opening_balance=opening, overdraft_limit=2000 if bid == "B" else 1000,
                    actor="seed",
                )
                kind = "electric_3p" if bid == "B" else "electric_1p"
                model = "acrel-dtsy1352" if bid == "B" else "acrel-ddsy1352"
                directory.add_meter(PROPERTY_ID, f"E-{rid}", aid, SITE_ID, kind, model, f"bus-{bid}", n)
                if bid == "A":
                    directory.add_meter(PROPERTY_ID, f"W-{rid}", aid, SITE_ID, "water", "generic-valve-water", "bus-W", n)
                # A month of usage; every fifth account has used more than it paid.
                usage = opening + 150 * (n % 6 + 1) if n % 5 == 3 else (n * 977) % opening
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
    return {"property_id": PROPERTY_ID, "rooms": n, "accounts": accounts, "site": site.site_id}
