"""Transfer (过户, docs/billing.md "Move-in, move-out and transfer") with a simulated meter over
real Modbus (RTU over TCP) and the real bridge: the console's 立即抄表 (READ_NOW) takes the
final reading through the bridge, the old account settles on it, the new tenant's account
gets the meter at exactly that reading, and the next reading is billed to the new account
from it: every kWh billed once, to the right tenant. One clock (real time plus jumps) is
shared by the meter, the bridge and the cloud, so hours pass in an instant."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bridge.config import parse_config
from bridge.runtime import Bridge
from bridge.simulator import SimBus, SimMeter
from core.domain.admins import AdminPrincipal
from core.domain.ledger import ACCOUNT_CLOSED
from core.integrations.queues import uplink_url
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.move_out import Transfer
from core.services.payments import Payments
from core.services.room_actions import RoomActions, Who
from core.store import directory as dstore
from core.store import meters as meters_store
from functions import uplink_consumer
from testkit.builders import Metered
from tests.integration.test_bridge import config_doc, deliver, wait_for


class JumpClock:
    """Real UTC time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kw) -> None:
        self.offset += timedelta(**kw)


def energy(account_id: str) -> list[int]:
    return [e.amount for e in LedgerService().store.all_entries(account_id) if str(e.kind) == "energy"]


@pytest.fixture
def site(tmp_path, monkeypatch, aws):
    clock = JumpClock()
    w = Metered()
    acct = w.account(opening=100_000)  # 1000.00
    meter = w.meter(acct)  # address 1, acrel-ddsy1352, flat 1.00 yuan/kWh
    sim = SimMeter("acrel-ddsy1352", 1, load_kw="0", total="1234.56", clock=clock, tou_period=lambda hour: "flat")
    bus = SimBus([sim]).start()
    doc = config_doc(w, bus, [(meter, 1, "acrel-ddsy1352")], tmp_path / "state",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=uplink_url(), down=w.site.down_queue)
    bridge = Bridge(parse_config(doc), clock=clock)
    monkeypatch.setattr(uplink_consumer, "ingest", Ingest(clock=clock))
    thread = bridge.run_in_thread()
    yield {"w": w, "acct": acct, "meter": meter, "sim": sim, "clock": clock, "monkeypatch": monkeypatch}
    bridge.stop()
    thread.join(timeout=10)
    bus.stop()
    deliver()


def use(sim: SimMeter, clock: JumpClock, kw: str, hours: float) -> None:
    """The meter draws `kw` for `hours` (the clock jumps), then nothing."""
    sim.load_kw = kw
    clock.advance(hours=hours)
    sim.load_kw = "0"


def baseline_total(meter: str) -> Decimal | None:
    deliver()
    m = meters_store.load_meter(meter)
    return m.baseline.total if m.baseline else None


def test_a_transfer_hands_the_meter_over_at_exactly_the_final_reading(site):
    w, acct, meter, sim, clock = site["w"], site["acct"], site["meter"], site["sim"], site["clock"]
    wait_for(lambda: baseline_total(meter) == Decimal("1234.56"))
    actions = RoomActions(Payments(clock=clock))
    who = Who(AdminPrincipal("adm-transfer", "结算员", "co-test", "owner", (w.property_id,)), "127.0.0.1")

    # the old tenant uses 2 kW for 3 h = 6.00 kWh; 立即抄表 brings the final reading 1240.56
    use(sim, clock, "2", 3)
    commands = actions.move_out.read_now(who, w.property_id, acct)
    assert len(commands) == 1
    wait_for(lambda: baseline_total(meter) == Decimal("1240.56"), timeout=30)
    assert sum(energy(acct)) == -600 and LedgerService().balance(acct) == 99_400  # 6.00 kWh × 1.00

    today = clock().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()
    s = actions.settle(who, w.property_id, acct, day=today, method="cash", receipt_no="XFER000001",
                       transfer=Transfer(phone="13900000001", tenant_name="新租户"))
    [final] = s["readings"]
    assert (final["source"], final["total"]) == ("bridge", "1240.56")
    assert (s["refund"], s["status"]) == (99_400, "settled") and s["transfer"]["phone"] == "13900000001"
    new = s["transfer"]["account_id"]
    assert dstore.get_account(acct).status == ACCOUNT_CLOSED and LedgerService().balance(acct) == 0
    new_account = dstore.get_account(new)
    assert new_account.tenant_id != dstore.get_account(acct).tenant_id and new_account.room_id == "R001"
    assert LedgerService().balance(new) == 0  # a clean start: none of the old tenant's money or debt
    moved = meters_store.load_meter(meter)
    assert moved.account_id == new and moved.baseline.total == Decimal("1240.56")
    # The same warm uplink consumer goes on: it rated readings before the transfer and
    # remembers the meter on the old account; the closed account makes it look again.

    # the new tenant uses 2 kW for 1.5 h = 3.00 kWh: billed to the new account from 1240.56
    use(sim, clock, "2", 1.5)
    wait_for(lambda: baseline_total(meter) == Decimal("1243.56"), timeout=30)
    assert sum(energy(new)) == -300 and LedgerService().balance(new) == -300
    assert sum(energy(acct)) == -600  # nothing more on the old account
    # 1243.56 - 1234.56 = 9.00 kWh = 6.00 (old) + 3.00 (new): none billed twice, none lost
    assert -(sum(energy(acct)) + sum(energy(new))) == 900
    assert LedgerService().verify(acct)["ok"] and LedgerService().verify(new)["ok"]
