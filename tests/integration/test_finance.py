"""Finance (docs/finance.md) over real services: WeChat Pay through its emulator (real
signatures, the notification function behind the local API Gateway), counter cash, refunds,
charge items, bills; the journal consumer fed from the tables' DynamoDB streams by the local
stream reader with serverless.yml's filters; the console's JSON API over HTTP. Amounts are
hand-picked fen and the totals are worked by hand."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from core.domain.charges import Charge
from core.services.bills import Bills
from core.services.finance import Finance
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import action_log as action_store
from core.store import journal as journal_store
from core.store import payments as pstore
from functions import journal_stream
from infra.local.paystack import APPID, MCHID
from infra.local.scheduler import StreamReader, drain_stream, load_functions, table_of_resource
from testkit.admins import csrf_token, logged_in, make_admin
from testkit.apistack import ApiStack
from testkit.builders import World

SH = ZoneInfo("Asia/Shanghai")
EVENTS = [e["stream"] for e in load_functions()["journalStream"]["events"]]


class Feed:
    """The journal consumer on the four tables' streams, from now on, as the event source
    mappings run it (filters, batch size, partial failures). Every batch handed over is kept,
    so a test can deliver them all again."""

    def __init__(self) -> None:
        self.readers = [(StreamReader(table_of_resource(e["arn"]["GetAtt"].split(".")[0])), e) for e in EVENTS]
        self.batches: list[dict] = []
        self.errors: list[str] = []

    def _handler(self, event, context):
        self.batches.append(event)
        return journal_stream.handler(event, context)

    def drain(self) -> int:
        n = 0
        for _ in range(20):
            step = sum(drain_stream(r, self._handler, e, errors=self.errors) for r, e in self.readers)
            n += step
            if not step:
                break
        assert not self.errors, self.errors
        return n

    def redeliver(self, reverse: bool = False) -> None:
        from infra.fakes.sitesim import LambdaContext

        for event in (reversed(self.batches) if reverse else list(self.batches)):
            result = journal_stream.handler(event, LambdaContext())
            assert not result.get("batchItemFailures")


@pytest.fixture
def stack(aws, monkeypatch):
    s = ApiStack(monkeypatch)
    yield s
    s.stop()


def _tenant(w: World) -> tuple[str, str]:
    account = w.account(opening=0)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    return account, openid


def _recharge(stack, auth, account, amount) -> str:
    r = requests.post(f"{stack.base}/api/v1/recharges", json={"account_id": account, "amount": amount},
                      headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["out_trade_no"]


def _console(stack, property_id: str, role: str = "owner", company_id: str | None = None):
    admin = make_admin(property_id, role=role, company_id=company_id)
    s = requests.Session()
    logged_in(s, admin, base=stack.base)
    return s, admin


def _independent_refs(account: str) -> set[str]:
    """What the journal must hold for an account, listed straight from the tables: money
    entries not carried by an order or a WeChat refund, every order, every refund, every bill
    payment not made through WeChat."""
    from core.store.models import BillItem, RefundItem

    refs = set()
    for e in LedgerService().entries(account, limit=500)[0]:
        if str(e.kind) in ("energy", "water", "opening", "meter_transfer", "refund_reversal"):
            continue
        if e.cause.startswith("order:") or e.entry_id.startswith("refund:"):
            continue
        refs.add(f"entry:{e.entry_id}")
    for o in pstore.orders_of_account(account, limit=500):
        refs.add(f"order:{o.out_trade_no}")
        refs |= {f"refund:{r.out_refund_no}" for r in RefundItem.by_order.query(o.out_trade_no)}
    for i in BillItem.query(account):
        if i.kind == "payment" and '"method": "wechat"' not in (i.body or ""):
            refs.add(f"billpay:{i.period}:{i.ref_id}")
    return refs


def _journal(property_id: str) -> list:
    return journal_store.rows(property_id, "2000-01-01T00:00:00.000000Z", "2100-01-01T00:00:00.000000Z")


def test_every_movement_in_one_list_with_hand_worked_totals_filters_and_scoping(stack):
    w = World()
    account, openid = _tenant(w)
    feed = Feed()
    auth = stack.login(openid)
    paid = _recharge(stack, auth, account, 5000)  # 微信充值 50.00
    stack.pay.pay(paid)
    assert stack.pay.wait_for_deliveries(10)
    pending = _recharge(stack, auth, account, 3000)  # 待支付 30.00: listed, not counted
    p = Payments()
    p.counter_recharge(w.property_id, account, 20000, "RC20261128001", "cash", "admin-7")  # 现金 200.00
    refund = p.refund(w.property_id, paid, 1000, "多充", "admin-7")  # 微信退款 10.00
    p.counter_refund(w.property_id, account, 500, "RF20261128001", "admin-7")  # 柜台退款 5.00
    bills = Bills()
    period = datetime.now(SH).strftime("%Y-%m")
    bills.apply_charges([Charge(account_id=account, property_id=w.property_id, period=period, source="item",
                                source_id="pfee", amount=1234, name="物业费", mode="deduct")], actor="test")  # 12.34
    bills.apply_charges([Charge(account_id=account, property_id=w.property_id, period=period, source="item",
                                source_id="rent", amount=10000, name="租金")], actor="test")  # a bill of 100.00
    bill_id = f"{account}:{period}"
    bills.transition(w.property_id, bill_id, "confirm", "admin:test")
    bills.transition(w.property_id, bill_id, "issue", "admin:test")
    bills.record_payment(bill_id, "RCPT20261128", 6000, "cash", "admin:test")  # 柜台缴费 60.00
    r = requests.post(f"{stack.base}/api/v1/bills/{bill_id}/pay", headers=auth, timeout=10)  # 微信缴费 40.00
    assert r.status_code == 201 and r.json()["amount"] == 4000, r.text
    stack.pay.pay(r.json()["out_trade_no"])
    assert stack.pay.wait_for_deliveries(10)
    ledger = LedgerService()
    ledger.post(account_id=account, entry_id="adj:finance-1", kind="adjust_credit", amount=300, cause="admin:fix",
                actor="admin-7", memo="抄表误差补偿")  # 调整 +3.00
    ledger.post(account_id=account, entry_id="use:finance-1", kind="energy", amount=250, cause="reading:1",
                actor="ingest")  # metered usage: never in the journal
    other = World()
    other_account, _ = _tenant(other)
    p.counter_recharge(other.property_id, other_account, 777, "RC20261128002", "cash", "admin-9")

    assert feed.drain() > 0
    rows = _journal(w.property_id)
    assert {r.ref for r in rows} == _independent_refs(account)
    assert len(rows) == 9
    by_ref = {r.ref: r for r in rows}
    assert (by_ref[f"order:{paid}"].type, by_ref[f"order:{paid}"].status) == ("wechat_recharge", "part_refunded")
    assert by_ref[f"order:{pending}"].status == "pending"
    assert by_ref[f"refund:{refund.out_refund_no}"].status in ("succeeded", "processing")
    assert by_ref["entry:cash:RC20261128001"].tenant_name == "测试租户"

    # the same batches again, in order and backwards (stale images): the journal is unchanged
    before = sorted(rows, key=lambda r: r.ref)
    feed.redeliver()
    feed.redeliver(reverse=True)
    assert sorted(_journal(w.property_id), key=lambda r: r.ref) == before

    s, _ = _console(stack, w.property_id, role="viewer")
    api = f"{stack.base}/admin/api/properties/{w.property_id}/finance/orders"
    body = s.get(api, timeout=10).json()
    t = body["totals"]
    # in: 50.00 + 200.00 + 60.00 + 40.00; out: 10.00 + 5.00
    assert (t["count"], t["received_fen"], t["paid_out_fen"], t["net_fen"]) == (9, 35000, 1500, 33500)
    assert (t["deducted_fen"], t["adjusted_fen"]) == (1234, 300)
    assert {k: (v["count"], v["amount_fen"]) for k, v in t["by_type"].items()} == {
        "wechat_recharge": (2, 5000), "counter_recharge": (1, 20000), "refund": (2, 1500), "deduction": (1, 1234),
        "bill_payment": (2, 10000), "adjustment": (1, 300)}
    assert [row["at"] for row in body["rows"]] == sorted((row["at"] for row in body["rows"]), reverse=True)

    def totals(**q):
        r = s.get(api, params=q, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    assert totals(type="refund")["totals"]["paid_out_fen"] == 1500
    assert [x["ref_no"] for x in totals(status="pending")["rows"]] == [pending]
    assert totals(type="bill_payment", status="posted")["totals"]["received_fen"] == 6000
    assert totals(building="B1", room="R001")["totals"]["count"] == 9
    assert totals(building="B1", room="R999")["totals"]["count"] == 0
    assert totals(tenant="测试")["totals"]["count"] == 9 and totals(tenant="别人")["totals"]["count"] == 0
    today = datetime.now(SH).date().isoformat()
    assert totals(**{"from": "2020-01-01", "to": "2020-01-31"})["totals"]["count"] == 0
    assert totals(**{"from": today, "to": today})["totals"]["count"] == 9

    for q, code, message in [
        ({"from": "2026-13-01"}, "date_invalid", "开始日期格式应为 YYYY-MM-DD"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "date_range_invalid", "开始日期不能晚于结束日期"),
        ({"from": "2026-01-01", "to": "2026-12-31"}, "date_range_too_long", "查询区间最长 92 天，请缩小日期范围"),
        ({"type": "bitcoin"}, "type_invalid", None),
        ({"status": "lost"}, "status_invalid", "未知的状态：lost"),
        ({"building": "Z9"}, "building_not_found", "楼栋不存在：Z9"),
        ({"room": "R001"}, "building_required", "按房间筛选时请同时选择楼栋"),
        ({"page": "0"}, "page_invalid", "页码必须是正整数"),
        ({"page": "5"}, "page_invalid", "页码超出范围（共 1 页）"),
        ({"sort": "x"}, "filter_unknown", "未知的筛选条件：sort"),
    ]:
        r = s.get(api, params=q, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (q, r.text)
        if message:
            assert r.json()["error"]["message"] == message
    page = s.get(f"{stack.base}/p/{w.property_id}/finance/orders", params={"type": "bitcoin"}, timeout=10)
    assert page.status_code == 400 and "未知的类型：bitcoin" in page.text

    csv_text = s.get(f"{stack.base}/p/{w.property_id}/finance/orders.csv", params={"type": "refund"},
                     timeout=10).content.decode("utf-8-sig")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("时间,类型,渠道,状态,金额（元）") and len(lines) == 1 + 2 + 2
    assert any(",退款,现金,已入账,-5.00," in x for x in lines) and any(",-10.00," in x for x in lines)

    # another property's admin: this property does not exist for them; their own list has none of it
    s2, _ = _console(stack, other.property_id)
    assert s2.get(api, timeout=10).status_code == 404
    assert s2.get(f"{stack.base}/p/{w.property_id}/finance/orders", timeout=10).status_code == 404
    theirs = s2.get(f"{stack.base}/admin/api/properties/{other.property_id}/finance/orders", timeout=10).json()
    assert [x["amount_fen"] for x in theirs["rows"]] == [777]

    # the backfill writes the same rows under the same keys
    for r in rows:
        journal_store.JournalItem(f"{w.property_id}#{r.month}", r.sort_key).delete()
    assert _journal(w.property_id) == []
    assert Finance().backfill(w.property_id) == 9
    assert sorted(_journal(w.property_id), key=lambda r: r.ref) == before


def test_the_journal_lags_the_postings_by_one_drain(aws):
    w = World()
    accounts = [w.account() for _ in range(5)]
    feed = Feed()
    p = Payments()
    for i in range(50):
        p.counter_recharge(w.property_id, accounts[i % 5], 100 + i, f"RCLAG{i:04d}", "cash", "admin-1")
        LedgerService().post(account_id=accounts[i % 5], entry_id=f"use:lag:{i}", kind="energy", amount=1,
                             cause=f"reading:{i}", actor="ingest")
    written = time.monotonic()
    feed.drain()
    lag = time.monotonic() - written
    rows = _journal(w.property_id)
    assert len(rows) == 50 and sum(r.amount for r in rows) == sum(100 + i for i in range(50))  # 6225 fen
    print(f"journal lag for 100 ledger records (50 money, 50 filtered out): {lag:.2f} s")
    assert lag < 15


def test_reconciliation_acts_on_each_mismatch_and_is_stored_per_property(stack):
    w = World()
    account, openid = _tenant(w)
    auth = stack.login(openid)
    matched = _recharge(stack, auth, account, 5000)
    stack.pay.pay(matched)
    differs = _recharge(stack, auth, account, 6000)
    stack.pay.pay(differs)
    assert stack.pay.wait_for_deliveries(10)
    stack.pay.set_bill_amount(differs, 5999)
    missed = _recharge(stack, auth, account, 3000)  # paid at WeChat, the notification lost: not credited here
    stack.pay.lose_notification(missed)
    stack.pay.pay(missed)
    ghost = _recharge(stack, auth, account, 700)  # credited here, never paid at WeChat
    stack.pay.lose_notification(ghost)
    tx = {"appid": APPID, "mchid": MCHID, "out_trade_no": ghost, "transaction_id": f"4200{uuid.uuid4().hex[:16]}",
          "trade_state": "SUCCESS", "amount": {"total": 700, "currency": "CNY"},
          "success_time": datetime.now(UTC).isoformat()}
    assert Payments().settle(tx, "test")[0]
    external = f"R{uuid.uuid4().hex[:20]}"
    stack.pay.add_external_trade(external, 1234)
    assert LedgerService().balance(account) == 5000 + 6000 + 700

    day = datetime.now(SH).date().isoformat()
    finance = Finance()
    report = finance.reconcile(day)
    assert report["actions"]["credited"] == 1
    assert LedgerService().balance(account) == 5000 + 6000 + 700 + 3000  # the missed credit, posted once
    rows = {r.out_trade_no: r for r in finance.day(w.property_id, day)}
    assert {no: (r.kind, r.action) for no, r in rows.items()} == {
        matched: ("matched", "none"), differs: ("amount_differs", "flagged"), missed: ("missing_here", "credited"),
        ghost: ("missing_there", "flagged")}
    assert (rows[differs].our_amount, rows[differs].their_amount) == (6000, 5999)
    assert (rows[missed].our_amount, rows[missed].their_amount) == (None, 3000)
    assert (rows[ghost].our_amount, rows[ghost].their_amount) == (700, None)
    assert external in {r.out_trade_no for r in finance.day("unknown", day)}

    again = finance.reconcile(day)  # a rerun: the credited trade now matches, and its row still says what was done
    assert again["actions"].get("credited", 0) == 0
    assert LedgerService().balance(account) == 14700
    rows = {r.out_trade_no: r for r in finance.day(w.property_id, day)}
    assert (rows[missed].kind, rows[missed].action, rows[missed].our_amount) == ("missing_here", "credited", 3000)
    summary = dict((d, s) for d, s, _ in finance.days(w.property_id))[day]
    assert summary["counts"] == {"matched": 1, "missing_here": 1, "missing_there": 1, "amount_differs": 1}
    assert summary["open"] == 2  # the two flagged rows

    api = f"{stack.base}/admin/api/properties/{w.property_id}/finance"
    viewer, viewer_admin = _console(stack, w.property_id, role="viewer")
    got = viewer.get(f"{api}/reconcile", params={"date": day}, timeout=10).json()
    assert {x["out_trade_no"] for x in got["rows"]} == {matched, differs, missed, ghost}
    assert viewer.get(f"{api}/reconcile", params={"date": "2026-02-30"}, timeout=10).status_code == 400
    token = csrf_token(viewer, f"/p/{w.property_id}/finance/reconcile", stack.base)
    r = viewer.post(f"{api}/reconcile/{day}/{differs}/review", json={"note": "x"},
                    headers={"X-CSRFToken": token}, timeout=10)
    assert r.status_code == 403
    fin, _ = _console(stack, w.property_id, role="finance", company_id=viewer_admin.company_id)
    token = csrf_token(fin, f"/p/{w.property_id}/finance/reconcile", stack.base)
    review = f"{api}/reconcile/{day}/{differs}/review"
    r = fin.post(review, json={"note": " "}, headers={"X-CSRFToken": token}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["message"] == "请填写核查说明"
    assert fin.post(review, json={"note": "x"}, timeout=10).status_code == 400  # no CSRF token
    r = fin.post(review, json={"note": "微信手续费调整，已与微信核实"}, headers={"X-CSRFToken": token}, timeout=10)
    assert r.status_code == 200 and r.json()["review_note"] == "微信手续费调整，已与微信核实"
    r = fin.post(review, json={"note": "再次"}, headers={"X-CSRFToken": token}, timeout=10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_reviewed"
    r = fin.post(f"{api}/reconcile/{day}/{matched}/review", json={"note": "x"}, headers={"X-CSRFToken": token},
                 timeout=10)
    assert r.status_code == 404
    records, _ = action_store.query(w.property_id, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC),
                                    action="reconcile_review")
    assert [(x.target, x.after) for x in records] == [(f"reconcile:{day}:{differs}", {"note": "微信手续费调整，已与微信核实"})]
    assert dict((d, s) for d, s, _ in finance.days(w.property_id))[day]["open"] == 1  # one flagged row left
    other = World()
    outsider, _ = _console(stack, other.property_id)
    assert outsider.get(f"{api}/reconcile", params={"date": day}, timeout=10).status_code == 404
    assert outsider.get(f"{stack.base}/admin/api/properties/{other.property_id}/finance/reconcile",
                        params={"date": day}, timeout=10).json()["rows"] == []
