"""Finance rules without the emulator (core/domain/finance.py): serverless.yml's stream filters
say what the domain takes, the filters' bad input, the totals and the reconciliation merge on
hand-worked rows."""

from __future__ import annotations

from datetime import date

import pytest

from core.domain import finance as F
from core.domain.errors import ValidationError
from infra.local.scheduler import load_functions, matches

WHO = F.Who("p1", "a1", "B1", "R101", "t1", "张三", "R101")


def test_the_ledger_stream_filter_is_the_journal_kinds():
    events = {e["stream"]["arn"]["GetAtt"]: e["stream"] for e in load_functions()["journalStream"]["events"]}
    assert set(events) == {"LedgerTable.StreamArn", "OrdersTable.StreamArn", "RefundsTable.StreamArn",
                           "BillsTable.StreamArn"}
    (pattern,) = events["LedgerTable.StreamArn"]["filterPatterns"]
    assert tuple(pattern["dynamodb"]["NewImage"]["kind"]["S"]) == F.JOURNAL_KINDS
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": {"kind": {"S": "energy"}}}}
    assert not matches(pattern, record)  # the per-reading debits never reach the consumer
    record["dynamodb"]["NewImage"]["kind"]["S"] = "fee"
    assert matches(pattern, record)


def test_rows_of_each_source():
    assert F.row_from_entry("pay:42", "recharge", 5000, "order:R1", "wechatpay", "t", "", WHO) is None
    assert F.row_from_entry("refund:F1", "refund", -100, "order:R1", "a", "t", "", WHO) is None
    cash = F.row_from_entry("cash:RC1", "recharge", 20000, "receipt:RC1", "admin-7", "2026-11-28T02:00:00Z", "", WHO)
    assert (cash.type, cash.channel, cash.ref_no, cash.signed) == ("counter_recharge", "cash", "RC1", 20000)
    fee = F.row_from_entry("item:pfee:2026-11", "fee", -1234, "charge", "month_end", "t", "物业费", WHO)
    assert (fee.type, fee.amount, fee.signed) == ("deduction", 1234, -1234)
    adj = F.row_from_entry("adj:1", "adjust_debit", -150, "admin", "admin-1", "t", "", WHO)
    assert adj.signed == -150 and F.channel_name(adj) == "调减"
    order = F.row_from_order("R1", "PAID", 5000, 5000, "t", "recharge", "", WHO)
    assert order.status == "refunded" and order.effective
    assert F.row_from_order("R2", "PAID", 5000, 100, "t", "bill", "", WHO).type == "bill_payment"
    assert F.row_from_bill_payment("2026-11", "R3", 4000, "wechat", "t", "", "wechatpay", WHO) is None


def test_filters_refuse_bad_input_with_a_reason():
    today = date(2026, 11, 28)
    f = F.parse_filters({}, today)
    assert (f.date_from, f.date_to, f.page) == (date(2026, 11, 1), today, 1)
    assert f.utc_range("Asia/Shanghai") == ("2026-10-31T16:00:00.000000Z", "2026-11-28T16:00:00.000000Z")
    for args, code in [({"from": "x"}, "date_invalid"), ({"to": "2026-02-30"}, "date_invalid"),
                       ({"from": "2026-11-02", "to": "2026-11-01"}, "date_range_invalid"),
                       ({"from": "2026-08-01", "to": "2026-11-01"}, "date_range_too_long"),
                       ({"type": "x"}, "type_invalid"), ({"status": "x"}, "status_invalid"),
                       ({"room": "R1"}, "building_required"), ({"page": "-1"}, "page_invalid"),
                       ({"page": "１"}, "page_invalid"), ({"tenant": "张" * 65}, "filter_invalid"),
                       ({"x": "1"}, "filter_unknown")]:
        with pytest.raises(ValidationError) as e:
            F.parse_filters(args, today)
        assert e.value.code == code, args
    assert F.parse_filters({"from": "2026-08-02", "to": "2026-11-01"}, today).date_from == date(2026, 8, 2)  # 92 days


def test_totals_count_only_money_that_moved():
    rows = [F.row_from_order("R1", "PAID", 5000, 1000, "t", "recharge", "", WHO),
            F.row_from_order("R2", "PENDING", 3000, 0, "t", "recharge", "", WHO),
            F.row_from_order("R3", "CLOSED", 700, 0, "t", "recharge", "", WHO),
            F.row_from_refund("F1", "R1", "SUCCESS", 1000, "t", "", "a", WHO),
            F.row_from_refund("F2", "R1", "FAILED", 200, "t", "", "a", WHO),
            F.row_from_bill_payment("2026-11", "P1", 6000, "cash", "t", "", "a", WHO),
            F.row_from_bill_payment("2026-11", "P2", 900, "balance", "t", "", "a", WHO),
            F.row_from_entry("fee:1", "fee", -1234, "c", "a", "t", "", WHO),
            F.row_from_entry("adj:1", "adjust_credit", 300, "c", "a", "t", "", WHO),
            F.row_from_entry("adj:2", "adjust_debit", -900, "c", "a", "t", "", WHO)]
    t = F.totals(rows)
    # in: 50.00 + 60.00 (the balance-paid bill is no money in); out: 10.00; adjusted: +3.00 - 9.00
    assert (t.count, t.received, t.paid_out, t.net, t.deducted, t.adjusted) == (10, 11000, 1000, 10000, 1234, -600)
    assert t.by_type["wechat_recharge"] == {"count": 3, "amount": 5000}
    assert t.by_type["refund"] == {"count": 2, "amount": 1000}


def test_a_rerun_keeps_what_the_first_run_did():
    first = F.ReconRow("2026-11-28", "p1", "R1", F.MISSING_HERE, None, 3000, action=F.CREDITED, note="已补记入账")
    rerun = F.ReconRow("2026-11-28", "p1", "R1", F.MATCHED, 3000, 3000)
    merged = F.merge(first, rerun)
    assert (merged.kind, merged.action, merged.our_amount) == (F.MISSING_HERE, F.CREDITED, 3000)
    assert F.merge(None, rerun) == rerun and F.merge(rerun, first) == first
    s = F.day_summary([merged, F.ReconRow("2026-11-28", "p1", "R2", F.AMOUNT_DIFFERS, 100, 99, action=F.FLAGGED)])
    assert (s["rows"], s["open"], s["our_fen"], s["their_fen"]) == (2, 1, 3100, 3099)
