"""Move-out settlement (退租结算, docs/billing.md "Move-in, move-out and transfer") on the
emulated AWS stack: an admin-entered final reading rated through the ingest path, charge
items prorated to the day (unused days credited back), open bills, deposit offset, refund or
arrears on the final bill, the statement; a crash injected after every step and the rerun
finishing it with nothing done twice; the console's routes, property scoping and the tenant
API's isolation. The clock is injected (10 March 2030, 12:00 in Shanghai); every figure is
worked by hand in the comments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from core.domain.admins import AdminPrincipal
from core.domain.ledger import ACCOUNT_CLOSED
from core.protocol.messages import MeterReading
from core.services import charge_items
from core.services.bills import Bills
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.move_out import Crash, statement
from core.services.payments import Payments
from core.services.room_actions import RoomActions, Who
from core.store import bills as bills_store
from core.store import deposits as deposits_store
from core.store import directory as dstore
from core.store import settlements as settlements_store
from testkit.builders import Clock, Metered

NOW = datetime(2030, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, 10 March 2030
DAY = "2030-03-10"


class Flat:
    """A metered room (flat price 1.00 yuan/kWh, 30 m²), the room actions on an injected clock."""

    def __init__(self, opening: int, items: list[dict] = ()) -> None:
        self.clock = Clock(NOW)
        self.w = Metered()
        self.pid = self.w.property_id
        self.account = self.w.account(opening=opening)
        self.meter = self.w.meter(self.account)
        self.actions = RoomActions(Payments(clock=self.clock))
        self.ingest = Ingest(clock=self.clock)
        self.admin = AdminPrincipal(f"adm-{uuid.uuid4().hex[:8]}", "结算员", "co-test", "owner", (self.pid,))
        self.who = Who(self.admin, "127.0.0.1")
        self.seq = 0
        for raw in items:
            charge_items.create(self.pid, raw, "admin:test", self.clock)
        if items:  # month-end for March has run (on 1 March)
            charge_items.run(self.pid, "2030-03", "month_end", bills=Bills(self.actions.control, self.clock))

    def read(self, total: str, hours_ago: float) -> None:
        self.seq += 1
        self.ingest.reading(self.w.site.site_id, MeterReading(self.meter, self.seq, NOW - timedelta(hours=hours_ago),
                                                              Decimal(total)))

    def balance(self, account: str | None = None) -> int:
        return LedgerService().balance(account or self.account)

    def settle(self, **kw):
        return self.actions.settle(self.who, self.pid, self.account, **{"day": DAY, **kw})


def rent(mode: str = "deduct", price: str = "1000", item_id: str = "rent") -> dict:
    return {"item_id": item_id, "name": "租金", "category": "rent", "basis": "fixed", "price": price, "cycle": "month",
            "start": "2030-01-01", "mode": mode}


def fee() -> dict:
    return {"item_id": "pf", "name": "物业费", "category": "property_fee", "basis": "fixed", "price": "62",
            "cycle": "month", "start": "2030-01-01", "mode": "bill"}


@pytest.fixture
def flat(aws):
    # opening 2000.00; month-end took rent 1000.00 (deducted: 1000.00 left) and billed the
    # property fee 62.00 (a draft bill 2030-03)
    f = Flat(200_000, [rent(), fee()])
    assert f.balance() == 100_000
    f.read("1000.00", 3)  # the baseline
    f.read("1010.00", 2)  # 10 kWh = 10.00 -> 990.00
    assert f.balance() == 99_000
    f.actions.move_out.deposits.take(f.admin, f.pid, f.account, 50_000, "cash", "DEPIN0001")  # deposit 500.00
    return f


def test_a_move_out_prorates_offsets_refunds_and_closes(flat):
    f = flat
    s = f.settle(method="cash", receipt_no="MOVEOUT001", readings={f.meter: "1012.50"})
    # final reading 1012.50 (entered: the meter is offline), 2.5 kWh = 2.50 -> 987.50
    [r] = s["readings"]
    assert (r["source"], r["total"], r["fen"]) == ("admin", "1012.50", 250)
    # rent: 1000.00 taken for March, used 1..10 March = 10/31: 100000 × 10/31 = 32258.06 -> 32258,
    # back 67742; fee 62.00 billed, due 6200 × 10/31 = 2000 -> back 4200
    items = {i["item_id"]: i for i in s["items"]}
    assert (items["rent"]["due"], items["rent"]["credited"]) == (32258, 67742)
    assert (items["pf"]["due"], items["pf"]["credited"]) == (2000, 4200)
    # balance 98750 + 67742 + 4200 = 170692; the March bill 6200 is paid from it; the
    # deposit is not needed (refunded whole) and 170692 - 6200 = 164492 refunded in cash
    assert (s["balance"], s["owed_bills"]) == (170_692, 6_200)
    assert s["deposit"] == {"held": 50_000, "applied": 0, "refunded": 50_000}
    assert s["bill_payments"] == [{"bill_id": f"{f.account}:2030-03", "amount": 6_200}]
    assert (s["refund"], s["arrears"], s["refund_total"], s["still_owed"]) == (164_492, 0, 214_492, 0)
    assert s["status"] == "settled"
    # the books
    assert f.balance() == 0 and LedgerService().verify(f.account)["ok"]
    assert dstore.get_account(f.account).status == ACCOUNT_CLOSED
    bill = bills_store.get_bill(f.account, "2030-03")
    assert (bill.state, bill.total, bill.paid) == ("issued", 6_200, 6_200)
    assert deposits_store.held(f.account) == 0
    entry = LedgerService().store.get_entry(f.account, "cash-refund:MOVEOUT001")
    assert (entry.amount, entry.balance_after) == (-164_492, 0)
    # the meter is tripped (held open: the room is vacated)
    assert f.actions.control.meters.load_meter(f.meter).manual_open
    # the same request again changes nothing and returns the same statement
    again = f.settle(method="cash", receipt_no="MOVEOUT001", readings={f.meter: "1012.50"})
    assert again["refund_total"] == 214_492 and f.balance() == 0


def test_a_deposit_smaller_than_the_debt_leaves_arrears_on_the_final_bill(aws):
    # opening 10.00, 50 kWh used = 50.00 -> -40.00; deposit 30.00 applied -> -10.00, moved
    # to the final bill (2030-03) as 退租结算欠费 10.00; the account closes at 0, the
    # settlement is 待结清 until that bill is paid
    f = Flat(1_000)
    f.read("100.00", 5)
    f.read("150.00", 1)
    assert f.balance() == -4_000
    f.actions.move_out.deposits.take(f.admin, f.pid, f.account, 3_000, "cash", "DEPIN0002")
    s = f.settle(method="cash", receipt_no="MOVEOUT002")
    assert s["deposit"] == {"held": 3_000, "applied": 3_000, "refunded": 0}
    assert (s["refund"], s["arrears"], s["still_owed"], s["status"]) == (0, 1_000, 1_000, "closing")
    assert s["arrears_bill"] == f"{f.account}:2030-03"
    bill = bills_store.get_bill(f.account, "2030-03")
    assert (bill.state, bill.total, bill.paid) == ("issued", 1_000, 0)
    [line] = bill.lines
    assert (line.source, line.name, line.amount) == ("settlement", "退租结算欠费", 1_000)
    assert f.balance() == 0 and dstore.get_account(f.account).status == ACCOUNT_CLOSED
    # paid at the counter: the statement reads 已结清
    Bills(clock=f.clock).record_payment(bill.bill_id, "C2030031000001", 1_000, "cash", "admin:test")
    assert statement(f.pid, f.account)["status"] == "settled"


STEPS = ["readings", "item:pf:2030-03", "offset_planned", "deposit_applied", "paid:{a}:2030-03", "deposit_refunded",
         "tripped", "closed"]


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_after_any_step_is_finished_by_the_rerun_and_nothing_twice(aws, step):
    # fee 62.00 billed for March; 60 kWh = 60.00 takes the opening 60.00 to 0.
    # Settling on 10 March: fee back 4200 -> balance 4200 against the bill 6200: net -2000;
    # the deposit 50.00 covers 20.00 (30.00 refunded), the bill is paid 6200, balance 0.
    f = Flat(6_000, [fee()])
    f.read("100.00", 5)
    f.read("160.00", 1)  # 60 kWh in 4 h (a 20 kW meter: no jump)
    assert f.balance() == 0
    f.actions.move_out.deposits.take(f.admin, f.pid, f.account, 5_000, "cash", "DEPIN0003")
    target = step.format(a=f.account)

    def crash(name: str) -> None:
        if name == target:
            raise Crash(name)

    f.actions.move_out.crash = crash
    with pytest.raises(Crash):
        f.settle(method="cash", receipt_no="MOVEOUT003")
    f.actions.move_out.crash = None
    s = f.settle(method="cash", receipt_no="MOVEOUT003")
    assert (s["balance"], s["owed_bills"], s["refund"], s["arrears"], s["still_owed"]) == (4_200, 6_200, 0, 0, 0)
    assert s["deposit"] == {"held": 5_000, "applied": 2_000, "refunded": 3_000}
    assert s["status"] == "settled"
    ledger = LedgerService()
    assert f.balance() == 0 and ledger.verify(f.account)["ok"]
    assert dstore.get_account(f.account).status == ACCOUNT_CLOSED
    bill = bills_store.get_bill(f.account, "2030-03")
    assert (bill.total, bill.paid, len(bill.payments)) == (6_200, 6_200, 1)
    held, movements = deposits_store.deposit(f.account)
    assert held == 0 and sorted(m.amount for m in movements) == [-3_000, -2_000, 5_000]
    for entry_id, amount in (("settle:unused:pf:2030-03", 4_200), ("deposit:close", 2_000),
                             ("settle:pay:2030-03", -6_200)):
        assert ledger.store.get_entry(f.account, entry_id).amount == amount
    assert settlements_store.get(f.account).status == "settled"


def test_bad_input_is_refused_before_anything_is_written(aws):
    f = Flat(5_000)
    f.read("100.00", 2)
    for kw, code in (({"day": "2030-03-11"}, "day_in_future"), ({"day": "10/03/2030"}, "day_invalid"),
                     ({"method": "alipay"}, "method_invalid"),
                     ({"readings": {f.meter: "99.99"}}, "reading_below_last"),
                     ({"readings": {f.meter: "200.00"}}, "reading_too_high"),  # 20 kW × 2 h = 40 kWh at most
                     ({"readings": {"m-nope": "1"}}, "meter_not_found")):
        with pytest.raises(Exception) as e:
            f.settle(**{"method": "cash", "receipt_no": "MOVEOUT004", **kw})
        assert getattr(e.value, "code", None) == code, (kw, e.value)
    assert settlements_store.get(f.account) is None and f.balance() == 5_000


# --- the console and the tenant API ---------------------------------------------------------------


def test_console_preview_confirm_statement_and_property_scoping(aws):
    from miniprogram_api.app import create_app
    from miniprogram_api.console_actions import SERVICE_KEY
    from testkit import admins

    f = Flat(20_000)
    f.read("100.00", 3)
    f.read("105.00", 2)  # 5.00 -> 195.00
    app = create_app()
    app.extensions[SERVICE_KEY] = f.actions
    owner = app.test_client()
    admins.logged_in(owner, admins.make_admin(f.pid))
    page = f"/p/{f.pid}/rooms/B1/R001/actions/settlement"
    r = owner.get(f"{page}?account={f.account}&day={DAY}&method=cash&r_{f.meter}=105.00")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "结算预览" in html and "195.00" in html and "确认退租结算" in html
    assert settlements_store.get(f.account) is None  # a preview writes nothing
    token = admins.csrf_token(owner, page + f"?account={f.account}")
    r = owner.post(page, data={"csrf_token": token, "account_id": f.account, "day": DAY, "method": "cash",
                               "receipt_no": "MOVEOUT005"})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    s = owner.get(r.headers["Location"])
    text = s.get_data(as_text=True)
    assert s.status_code == 200 and "退租结算单" in text and "195.00" in text and "已结清" in text
    api = owner.get(f"/admin/api/properties/{f.pid}/accounts/{f.account}/settlement")
    assert api.status_code == 200 and api.get_json()["refund_total"] == 19_500
    # another property's admin: 404 on every route, nothing settled for them
    other = Flat(1_000)
    outsider = app.test_client()
    outsider_admin = admins.make_admin(other.pid)
    admins.logged_in(outsider, outsider_admin)
    assert outsider.get(f"/admin/api/properties/{other.pid}/accounts/{f.account}/settlement").status_code == 404
    token = admins.csrf_token(outsider, f"/p/{other.pid}/rooms/B1/R001/actions/settlement")
    r = outsider.post(f"/admin/api/properties/{other.pid}/accounts/{other.account}/settlement/preview",
                      json={"day": DAY, "method": "cash"}, headers={"X-CSRFToken": token})
    assert r.status_code == 200  # their own room previews
    app.extensions[SERVICE_KEY] = other.actions
    r = outsider.post(f"/admin/api/properties/{other.pid}/accounts/{f.account}/settlement",
                      json={"day": DAY, "method": "cash", "receipt_no": "MOVEOUT006"}, headers={"X-CSRFToken": token})
    assert r.status_code == 404
    r = outsider.post(f"/admin/api/properties/{f.pid}/accounts/{f.account}/settlement",
                      json={"day": DAY, "method": "cash", "receipt_no": "MOVEOUT006"}, headers={"X-CSRFToken": token})
    assert r.status_code == 404
    # a viewer may not settle
    viewer = app.test_client()
    admins.logged_in(viewer, admins.make_admin(other.pid, role="viewer", company_id=outsider_admin.company_id))
    token = admins.csrf_token(viewer, f"/p/{other.pid}/rooms")
    r = viewer.post(f"/admin/api/properties/{other.pid}/accounts/{other.account}/settlement",
                    json={"day": DAY, "method": "cash", "receipt_no": "MOVEOUT007"}, headers={"X-CSRFToken": token})
    assert r.status_code == 403 and settlements_store.get(other.account) is None


@pytest.fixture
def stack(aws, monkeypatch):
    from testkit.apistack import ApiStack

    s = ApiStack(monkeypatch)
    yield s
    s.stop()


def test_the_tenant_sees_their_statement_and_nobody_else_does(stack):
    f = Flat(3_000)
    f.read("100.00", 2)
    mine = f"o{uuid.uuid4().hex[:27]}"
    f.w.d.bind_openid(f.w.tenant_id, mine)
    f.settle(method="cash", receipt_no="MOVEOUT008")
    r = requests.get(f"{stack.base}/api/v1/accounts/{f.account}/settlement", headers=stack.login(mine), timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["refund_fen"], body["refund_total"], body["still_owed_fen"], body["status"]) == (
        3_000, "30.00", 0, "settled")
    other = Flat(1_000)
    theirs = f"o{uuid.uuid4().hex[:27]}"
    other.w.d.bind_openid(other.w.tenant_id, theirs)
    r = requests.get(f"{stack.base}/api/v1/accounts/{f.account}/settlement", headers=stack.login(theirs), timeout=10)
    assert r.status_code == 404 and "error" in r.json()
    r = requests.get(f"{stack.base}/api/v1/accounts/{other.account}/settlement", headers=stack.login(theirs),
                     timeout=10)
    assert r.status_code == 404  # bound, but no settlement
