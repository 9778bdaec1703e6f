"""Eight hours of a site's life under a storm of DynamoDB faults (the emulator's switch:
TransactionConflict, throttling, 500s and lost answers on every write, 500s on reads),
with every uplink message delivered twice and out of order, WeChat Pay notifications
delivered twice and retried while the store refuses, and the tick failing when it must.

Then the faults stop: within 3 ticks every relay is what the books say and every fen is
where the books say (the platform balance or the meter that keeps the money), every
order credited once, every reading billed once."""

from __future__ import annotations

import random
from contextlib import contextmanager

from core.services.ledger import LedgerService
from core.store import commands as cstore
from infra.local import stack

WRITES = ("TransactWriteItems", "PutItem", "UpdateItem")
STORM = {
    "conflict": {op: 0.20 for op in WRITES},
    "throttle": {op: 0.10 for op in WRITES},
    "lost": {op: 0.05 for op in WRITES},
    "error": {"*": 0.05},
}


@contextmanager
def faults(rig, spec: dict):
    seen: dict = {}
    stack.faults(spec)
    rig.faulty = True
    try:
        yield seen
    finally:
        seen.update(stack.faults()["injected"])
        stack.faults("off")
        rig.faulty = False


def test_a_storm_of_dynamodb_faults_and_redeliveries_converges(rig, tenant):
    cut = rig.account(opening=300)  # goes below zero at hour 4, pays at hour 5
    rich = rig.account(opening=5000)  # never near the line
    od = rig.account(opening=100, overdraft=500)  # two meters; cut only below -5.00 (hour 7)
    ms = rig.account(opening=0, meter_side=True)  # the meter keeps the money
    meters = {cut.account_id: [rig.meter(cut)], rich.account_id: [rig.meter(rich)],
              od.account_id: [rig.meter(od), rig.meter(od)], ms.account_id: [rig.meter(ms)]}
    per_hour = {cut.account_id: ["1.00"], rich.account_id: ["2.50"], od.account_id: ["0.50", "0.50"],
                ms.account_id: ["0.40"]}
    first = tenant.pay(ms.account_id, 3000)  # before the storm: purchase 1 goes to the meter
    rig.read(minutes=1)
    assert rig.converge() <= 3
    rng = random.Random(11)

    with faults(rig, {"seed": 5, **STORM}) as seen:
        for hour in range(1, 9):
            for acct, kwh in per_hour.items():
                for meter, q in zip(meters[acct], kwh, strict=True):
                    rig.use(meter, q)
            rig.read()
            if hour == 5:
                tenant.pay(cut.account_id, 2000, duplicates=1, wait=False)
                tenant.pay(ms.account_id, 1000, wait=False)
            rig.deliver(order=lambda msgs: rng.sample(msgs, len(msgs)), copies=2)
            rig.cycle()
        assert tenant.stack.pay.wait_for_deliveries(60)
    assert seen["TransactWriteItems"]["conflict"] > 5 and seen["TransactWriteItems"]["lost"] > 0, seen

    rig.deliver()
    assert not rig.held, "uplink messages never got through"
    assert rig.converge(max_ticks=3) <= 3
    rig.check()
    # by hand: 8 hours at the rates above, 1 yuan/kWh (the books also know that a tripped
    # meter uses nothing: the cut account and the overdraft account after their cuts)
    ledger = LedgerService()
    assert not cut.cut and od.cut
    assert ledger.balance(rich.account_id) == 5000 - 8 * 250
    assert ledger.balance(ms.account_id) == 0
    assert rig.site.meters[meters[ms.account_id][0]].balance == 3000 + 1000 - 8 * 40
    ids = sorted(e.entry_id for e in ledger.store.all_entries(ms.account_id) if e.kind == "meter_transfer")
    assert ids == [f"meter:{meters[ms.account_id][0]}:1", f"meter:{meters[ms.account_id][0]}:2"]
    assert first in rig.books.orders
    meter = meters[rich.account_id][0]  # every hourly reading after the baseline billed once
    used = [(e.entry_id, e.amount) for e in ledger.store.all_entries(rich.account_id) if e.kind == "energy"]
    assert [a for _, a in used] == [-250] * 8 and len({i for i, _ in used}) == 8
    assert all(i.startswith(f"use:{meter}:") for i, _ in used)
    # and the supply: the cut account tripped once and restored once
    ops = [c.op for c in sorted(cstore.commands_of_meter(meters[cut.account_id][0]), key=lambda c: c.issued_at)
           if c.state == "applied"]
    assert ops == ["TRIP", "CLOSE"]
