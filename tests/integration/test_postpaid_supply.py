"""A post-paid account (后付费) is rated like a prepaid one but never cut for money: the real
bridge (bridge/runtime.py) polls simulated meters over Modbus RTU-over-TCP, the cloud rates
their readings from the uplink queue, and at -500 yuan the prepaid account's meter is
tripped while the post-paid one's stays closed; turning the cut account post-paid closes
its meter again. Time is the chaos suite's JumpClock (real time plus jumps)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.domain.events import Subject
from core.services import tenant_reads
from core.store import directory as dstore
from core.store import events as estore
from tests.chaos.conftest import BridgeRig, shown


@pytest.fixture
def rig(aws, monkeypatch, tmp_path):
    r = BridgeRig(monkeypatch, tmp_path)
    try:
        yield r
    finally:
        r.close()
        r.held.clear()
        r.take()
        r.held.clear()


def test_postpaid_at_minus_500_yuan_keeps_supply_while_prepaid_is_cut(rig):
    r = rig
    prepaid = r.account(opening=-50_000)
    postpaid = r.account(opening=-50_000)
    r.control.configure_account(r.w.property_id, postpaid.account_id, "admin:test", payment_mode="postpaid")
    m_pre, m_post = r.meter(prepaid), r.meter(postpaid)
    r.start()
    r.until(lambda: r.billed_to(m_pre) == Decimal("100.00") and r.billed_to(m_post) == Decimal("100.00"))

    # an hour at 2 kW on both meters: 2.00 kWh at 1 yuan/kWh debits each account about 2 yuan
    r.load(m_pre, "2")
    r.load(m_post, "2")
    r.jump.advance(hours=1)
    r.until(lambda: r.billed_to(m_pre) >= Decimal("101.99") and r.billed_to(m_post) >= Decimal("101.99"))
    r.until(lambda: not r.sims[m_pre].supply_on)  # the prepaid meter is tripped over Modbus
    for sim in r.sims.values():
        sim.load_kw = "0"
    r.until(r.all_billed)

    ledger = r.control.ledger
    pre, post = ledger.state(prepaid.account_id, fresh=True), ledger.state(postpaid.account_id, fresh=True)
    # rated alike: each balance is -500.00 less what its meter showed used at 1 yuan/kWh
    # (0.01 kWh = 1 fen). The cloud bills a meter with TOU registers by register, each shown
    # rounded down to 0.01 kWh, so an hour crossing a band boundary can show 0.01 kWh less
    # in its bands than in its total: the rig's own model (tests/chaos/conftest.py settle_usage).
    def used_fen(m: str) -> int:
        return int((sum(shown(v) for v in r.sims[m].tou.values()) - r.initial[m]) * 100)

    assert 199 <= used_fen(m_post) <= 200 and 199 <= used_fen(m_pre) <= 200
    assert post.balance == -50_000 - used_fen(m_post)
    assert pre.balance == -50_000 - used_fen(m_pre)
    assert pre.control["cut_state"] == "cut" and post.control["cut_state"] == "none"
    assert r.sims[m_post].supply_on and dstore.get_meter(m_post).relay_state != "open"
    # no low-balance alarm for the post-paid account; the prepaid one was told
    assert not [e for e in estore.events_of(Subject.account(postpaid.account_id)) if e.type == "low_balance"]
    assert [e for e in estore.events_of(Subject.account(prepaid.account_id)) if e.type == "low_balance"]
    # what the tenant reads
    view = tenant_reads._view(dstore.get_account(postpaid.account_id), {}, {})
    assert view.supply.state == "on" and view.supply.reason.startswith("后付费")

    # the cut account turns post-paid: its meter is closed again at once (no payment)
    r.control.configure_account(r.w.property_id, prepaid.account_id, "admin:test", payment_mode="postpaid")
    r.until(lambda: r.sims[m_pre].supply_on)
    assert ledger.state(prepaid.account_id, fresh=True).control["cut_state"] == "none"
    assert ledger.balance(prepaid.account_id) == pre.balance  # restored without a fen moving
    settings = [e for e in estore.events_of(Subject.account(prepaid.account_id)) if e.type == "settings"]
    assert settings and settings[-1].data["payment_mode"] == "postpaid" and settings[-1].data["actor"] == "admin:test"


def test_payment_mode_refuses_bad_values_and_changes_nothing(rig):
    from core.domain.errors import ValidationError

    a = rig.account(opening=1000)
    before = rig.control.ledger.state(a.account_id, fresh=True)
    with pytest.raises(ValidationError) as e:
        rig.control.configure_account(rig.w.property_id, a.account_id, "admin:test", payment_mode="later")
    assert e.value.code == "payment_mode_invalid"
    after = rig.control.ledger.state(a.account_id, fresh=True)
    assert after.settings_rev == before.settings_rev and after.control["payment_mode"] == "prepaid"
