"""A process dies between every two steps of read -> debit -> TRIP and of
pay -> credit -> CLOSE; the ordinary retry paths (SQS redelivering the reading or the
command result, WeChat Pay retrying its notification, the control tick) must bring every
account to the books: billed once, credited once, relay as intended within 3 ticks.

Each case crashes one step of the cut (readings delivered out of order) and one step of
the restore (the notification delivered twice at once), then everything is delivered
again late: nothing may move."""

from __future__ import annotations

import pytest

from core.integrations import queues
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import commands as cstore
from core.store import meters as meters_store
from tests.chaos.conftest import crash_once

READ_STEPS = {
    "before the debit": (LedgerService, "post_request", False),
    "after the debit, before the TRIP": (LedgerService, "post_request", True),
    "TRIP recorded, not sent": (queues, "send_command", False),
    "TRIP sent, not marked sent": (queues, "send_command", True),
    "TRIP result half recorded": (meters_store, "clear_relay_command", False),
    "TRIP result recorded, message not deleted": (Control, "command_result", True),
    "reading handled, message not deleted": (Ingest, "handle", True),
}
PAY_STEPS = {
    "before the credit": (LedgerService, "post_request", False),
    "after the credit, before the CLOSE": (LedgerService, "post_request", True),
    "CLOSE recorded, not sent": (queues, "send_command", False),
    "CLOSE sent, not marked sent": (queues, "send_command", True),
    "CLOSE result half recorded": (meters_store, "clear_relay_command", False),
    "CLOSE result recorded, message not deleted": (Control, "command_result", True),
    "notification handled, never answered": (Payments, "handle_notification", True),
}
CASES = list(zip(READ_STEPS, PAY_STEPS, strict=True))


def newest_first(msgs: list[dict]) -> list[dict]:
    return list(reversed(msgs))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the crashed notification
@pytest.mark.parametrize(("read_step", "pay_step"), CASES, ids=[f"{a} | {b}" for a, b in CASES])
def test_a_crash_between_any_two_steps_converges(rig, tenant, monkeypatch, read_step, pay_step):
    a = rig.account(opening=500)
    meter = rig.meter(a)
    rig.read()  # the baseline
    rig.deliver()

    # read -> debit -> TRIP, with a crash at read_step
    with monkeypatch.context() as mp:
        crashed = crash_once(mp, *READ_STEPS[read_step])
        rig.use(meter, "3")
        rig.read()
        rig.use(meter, "4")  # 5.00 - 7.00: below zero
        rig.read()
        rig.deliver(order=newest_first)  # the queue is unordered: seq 3 first, seq 2 after it
        rig.site_runs()
        rig.deliver()
        assert crashed["crashed"] == 1, "the crash point was never reached"
        assert rig.converge(max_ticks=3) <= 3
    assert a.cut and not rig.site.meters[meter].relay_closed
    assert LedgerService().balance(a.account_id) == -200
    rig.check()

    # pay -> credit -> CLOSE, with a crash at pay_step; WeChat delivers it twice at once
    with monkeypatch.context() as mp:
        crashed = crash_once(mp, *PAY_STEPS[pay_step])
        no = tenant.pay(a.account_id, 5000, duplicates=1)
        rig.site_runs()
        rig.deliver()
        assert tenant.answered(no)
        assert rig.converge(max_ticks=3) <= 3
        assert crashed["crashed"] == 1, "the crash point was never reached"
    assert not a.cut and rig.site.meters[meter].relay_closed
    rig.check()

    # late copies of everything: every uplink message again, the notification again
    rig.redeliver_all()
    tenant.stack.pay.resend_notification(no, duplicates=2)
    assert tenant.stack.pay.wait_for_deliveries(30)
    rig.cycle()
    rig.check()
    assert LedgerService().balance(a.account_id) == 4800
    trips = [c for c in cstore.commands_of_meter(meter) if c.op == "TRIP" and c.state == "applied"]
    assert len(trips) == 1  # the cut was carried out once, however often its cause came again
