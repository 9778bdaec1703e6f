"""The real bridge (bridge/runtime.py) against simulated meters over Modbus and the cloud's
queues in the emulator, with faults on the site's side: a bridge clock minutes ahead of or
behind the cloud, a meter that stops answering while it should be closed, the site's
uplink down past the command lifetime, and the bridge process killed with SIGKILL in the
middle of read -> debit -> TRIP and pay -> CLOSE.

Time is a JumpClock (real time plus jumps) shared by the cloud, the bridge and the meters,
so hours of usage and command lifetimes pass in an instant; the bridge's polls run in
real time."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlparse

import pytest

from core.domain import control as policy
from core.domain.events import Subject
from core.store import commands as cstore
from core.store import events as estore
from core.store import meters as meters_store
from tests.chaos.conftest import Link


def cut_by_usage(r, a, meter: str) -> None:
    """Two hours at 2 kW take the account below zero: the TRIP goes out at once."""
    r.load(meter, "2")
    r.jump.advance(hours=2)
    r.until(lambda: r.billed_to(meter) >= Decimal("104.00"))
    r.settle_usage()
    assert a.cut


def pay(r, a, amount: int, ref: str) -> None:
    r.control.credit(account_id=a.account_id, entry_id=f"pay:{ref}", kind="recharge", amount=amount,
                     cause=f"order:{ref}", actor="wechatpay")
    r.books.pay(a.account_id, amount)


@pytest.mark.parametrize("skew", [-7, 7], ids=["bridge 7 min behind", "bridge 7 min ahead"])
def test_a_silent_meter_and_a_site_offline_past_the_command_lifetime(aws, monkeypatch, tmp_path, skew):
    from tests.chaos.conftest import BridgeRig

    site_link = Link(urlparse(aws).port).start()  # the site's internet connection
    r = BridgeRig(monkeypatch, tmp_path, endpoint=site_link.url)
    try:
        a = r.account(opening=300)
        meter = r.meter(a)
        b = r.account(opening=100_000)
        other = r.meter(b, total="500.00")
        r.start(skew=timedelta(minutes=skew))
        r.until(lambda: r.billed_to(meter) == Decimal("100.00") and r.billed_to(other) == Decimal("500.00"))
        r.load(other, "1")
        cut_by_usage(r, a, meter)
        assert r.converge(max_ticks=0) == 0  # the fast path: tripped without waiting for a tick
        assert not r.sims[meter].supply_on

        # the meter stops answering; the tenant pays: every CLOSE fails, backing off
        r.sims[meter].silent = True
        pay(r, a, 5000, f"silent-{skew}")
        for attempt in range(1, policy.ALARM_AFTER_ATTEMPTS + 1):
            r.until(lambda n=attempt: meters_store.load_meter(meter).relay_attempts >= n
                    and cstore.get_command(meters_store.load_meter(meter).relay_command_id or "x") is None)
            r.jump.advance(seconds=policy.retry_delay(attempt).total_seconds() + 1)
            r.tick()
        stuck = r.until(lambda: [e for e in estore.events_of(Subject.meter(meter)) if e.type == "command_failing"])
        assert len(stuck) == 1 and stuck[0].status == "to_notify"
        assert not r.sims[meter].supply_on

        # the site goes offline for two hours (past the command lifetime); the meter is fixed
        # meanwhile. First the bridge has answered every CLOSE it was sent (the last one of the
        # loop above could otherwise reach it or not before the link goes down: a race), then
        # a CLOSE is issued while the site is offline, so one is surely out there to expire.
        r.until(lambda: cstore.get_command(meters_store.load_meter(meter).relay_command_id or "x") is None)
        site_link.down()
        r.sims[meter].silent = False
        attempts = meters_store.load_meter(meter).relay_attempts
        r.jump.advance(seconds=policy.retry_delay(attempts).total_seconds() + 1)
        r.tick()  # a CLOSE waits in the site's queue
        assert cstore.get_command(meters_store.load_meter(meter).relay_command_id or "x") is not None
        r.jump.advance(hours=2)
        r.tick()  # the CLOSE out there expires; a fresh one is issued
        r.jump.advance(minutes=1)
        r.tick()
        site_link.up()
        # the bridge refuses the expired CLOSE by its own clock, runs the fresh one
        assert r.converge(max_ticks=3, settle=15) <= 3
        assert r.sims[meter].supply_on
        r.settle_usage()
        r.until(r.all_billed)
        r.check()
        closes = [c for c in cstore.commands_of_meter(meter) if c.op == "CLOSE"]
        assert any(c.state == "expired" for c in closes) or any(
            (cstore.command_result(c.command_id) or {}).get("detail", "").startswith("expired") for c in closes)
        assert r.bridge.outbox.depth() < 5  # the outage's backlog went out
    finally:
        r.close()
        site_link.close()
        r.held.clear()
        r.take()


def test_kill_9_in_the_middle_of_cut_and_restore_converges(bridge_rig, tmp_path):
    r = bridge_rig
    rng = random.Random(3)
    a = r.account(opening=300)
    meter = r.meter(a)
    b = r.account(opening=100_000)
    other = r.meter(b, total="500.00")
    log = open(tmp_path / "bridge.log", "ab")  # noqa: SIM115  (kept open across the bridge's lives)

    def kill_soon() -> None:  # the bridge dies at some point of whatever it is doing
        time.sleep(rng.uniform(0.2, 1.2))
        r.kill()
        r.start_process(log)

    try:
        r.start_process(log)
        r.until(lambda: r.billed_to(meter) == Decimal("100.00") and r.billed_to(other) == Decimal("500.00"),
                timeout=30)
        r.load(other, "1")
        r.load(meter, "2")
        r.jump.advance(hours=2)  # read -> debit -> TRIP, with kills along the way
        for _ in range(3):
            kill_soon()
            r.deliver()
        r.until(lambda: r.billed_to(meter) >= Decimal("104.00"), timeout=30)
        r.settle_usage()
        assert a.cut
        assert r.converge(max_ticks=3, settle=15) <= 3
        pay(r, a, 5000, "kill-1")  # pay -> CLOSE, with kills along the way
        for _ in range(3):
            kill_soon()
            r.deliver()
        assert r.converge(max_ticks=3, settle=15) <= 3
        r.until(r.all_billed, timeout=30)
        r.settle_usage()
        r.until(r.all_billed, timeout=30)
        r.check()
        for op in ("TRIP", "CLOSE"):  # each carried out, and no command run twice on the meter
            assert [c.state for c in cstore.commands_of_meter(meter) if c.op == op].count("applied") >= 1
    finally:
        log.close()
