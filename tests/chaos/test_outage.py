"""The emulator (DynamoDB and SQS at once) unreachable mid-run, then stalled as a stopped
process is (connections accepted, nothing answered until it runs again), in front of a
TCP proxy we control: readings wait on the queue, the tick fails, a payment notification
fails (WeChat retries it), and once the cloud is back everything converges within 3
ticks, every fen where the books say."""

from __future__ import annotations

import threading

import pytest

from core.services.ledger import LedgerService
from tests.chaos.conftest import Rig


@pytest.fixture
def outage_rig(link, monkeypatch):
    r = Rig(monkeypatch)  # made after the link: every client goes through it
    yield r
    link.up()
    r.held.clear()
    r.take()
    r.held.clear()


def test_an_emulator_outage_mid_run_converges(outage_rig, link):
    r = outage_rig
    a = r.account(opening=500)
    meter = r.meter(a)
    b = r.account(opening=100_000)
    other = r.meter(b)
    r.read()
    r.deliver()
    r.use(meter, "7")  # 5.00 - 7.00: below zero
    r.use(other, "3")
    r.read()  # on the queue when the cloud goes away

    link.down()
    r.faulty = True
    with pytest.raises(Exception):  # noqa: B017  (whatever botocore raises when nothing answers)
        r.deliver()  # the consumer cannot even receive
    assert r.tick() is None and r.tick_errors == 1  # the schedule runs it again later
    with pytest.raises(Exception):  # noqa: B017  the notification fails: WeChat Pay retries it
        r.control.credit(account_id=b.account_id, entry_id="pay:outage-1", kind="recharge", amount=1000,
                         cause="order:outage-1", actor="wechatpay")
    assert link.refused > 0
    link.up()

    # the cloud is back: the reading is billed and the cut carried out; the retried credit lands
    r.deliver()
    assert LedgerService().balance(a.account_id) == -200
    r.control.credit(account_id=b.account_id, entry_id="pay:outage-1", kind="recharge", amount=1000,
                     cause="order:outage-1", actor="wechatpay")
    r.books.pay(b.account_id, 1000)

    # now the emulator stalls (as under SIGSTOP) while the site answers the TRIP and the
    # tenant of a pays: both wait, then go through
    link.stall()
    threading.Timer(1.0, link.up).start()
    r.site_runs()
    r.control.credit(account_id=a.account_id, entry_id="pay:outage-2", kind="recharge", amount=5000,
                     cause="order:outage-2", actor="wechatpay")
    r.books.pay(a.account_id, 5000)
    r.faulty = False
    assert r.converge(max_ticks=3) <= 3
    r.check()
    assert LedgerService().balance(a.account_id) == 500 - 700 + 5000
    assert LedgerService().balance(b.account_id) == 100_000 - 300 + 1000
