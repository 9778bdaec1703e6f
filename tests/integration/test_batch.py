"""Batch operations (docs/batch.md) over the real emulator: tasks made from a selection or a
sheet, the dry run, the fan-out over the real batch queue to the worker Lambda handler,
redelivery, a crash in the middle of a message, cancel, retry, schedules.

Expected values are worked by hand from the inputs (opening balances, amounts), never read
back from the code under test.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from openpyxl import Workbook

from core.domain import batch as rules
from core.domain.admins import AdminPrincipal
from core.domain.errors import Conflict, Forbidden, ValidationError
from core.integrations import schedules
from core.integrations.queues import batch_url, uplink_url
from core.services import batch as batch_service
from core.services.batch import Batch, read_sheet
from core.services.ledger import LedgerService
from core.store import commands as cstore
from core.store import directory as dstore
from core.store import meters as mstore
from functions import batch as batch_fn
from functions import uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, drain_uplink, sqs_record
from testkit.builders import Clock, Metered, World

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class Crash(BaseException):
    """A process dying in the middle of a message (no handler catches it)."""


def owner(*property_ids: str) -> AdminPrincipal:
    return AdminPrincipal("a-batch", "批量管理员", "co", "owner", tuple(property_ids))


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def svc(aws, clock, monkeypatch):
    """The worker's service (functions/batch.py) with the test's clock; the queue drained first."""
    s = Batch(clock=clock)
    monkeypatch.setattr(batch_service, "_default", s)
    sqs = boto3.client("sqs")
    while got := sqs.receive_message(QueueUrl=batch_url(), MaxNumberOfMessages=10).get("Messages"):
        for m in got:  # another test's leftovers
            sqs.delete_message(QueueUrl=batch_url(), ReceiptHandle=m["ReceiptHandle"])
    return s


def receive_all() -> list[dict]:
    sqs, out = boto3.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=batch_url(), MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  WaitTimeSeconds=0).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in {x["MessageId"] for x in out}]
        if not fresh:
            return out
        out += fresh


def deliver(messages: list[dict]) -> dict:
    """Hand messages to the worker handler as one SQS event (the event source mapping's way)."""
    return batch_fn.worker({"Records": [sqs_record(m, batch_url()) for m in messages]}, LambdaContext())


def drain() -> int:
    return drain_uplink(batch_url(), batch_fn.worker)


def balances(ids: list[str]) -> dict[str, int]:
    return {a.account_id: a.balance for a in dstore.accounts(ids)}


def test_a_recharge_of_20_rooms_posts_exactly_once_under_redelivery_and_a_crash(svc, clock, monkeypatch):
    w = World()
    ids = [w.account(opening=1000) for _ in range(20)]  # 10.00 yuan each
    admin = owner(w.property_id)
    svc.per_message = 7  # 20 items: messages of 7, 7 and 6
    task = svc.create(admin, w.property_id, "recharge", {"amount": "12.34"}, selection={"buildings": ["B1"]})
    assert (task.state, task.total) == (rules.DRAFT, 20)

    # the dry run: 10.00 -> 22.34 for every room, and nothing changed, nothing queued
    page = svc.preview(w.property_id, task.task_id)
    assert [(r["before"], r["after"]) for r in page] == [("余额 10.00", "余额 22.34")] * 20
    assert balances(ids) == dict.fromkeys(ids, 1000)
    assert receive_all() == []

    svc.confirm(admin, w.property_id, task.task_id)
    messages = receive_all()
    assert sorted(len(json.loads(m["Body"])["items"]) for m in messages) == [6, 7, 7]

    # the first message dies after its third posting (before any result is written)
    original, calls = Batch._do_recharge, {"n": 0}

    def dying(self, *a, **kw):
        out = original(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("the Lambda died")
        return out

    monkeypatch.setattr(Batch, "_do_recharge", dying)
    with pytest.raises(Crash):
        deliver(messages[:1])
    monkeypatch.setattr(Batch, "_do_recharge", original)
    # every message delivered twice more (redelivery, then a duplicate)
    for _ in range(2):
        assert deliver(messages) == {"batchItemFailures": []}

    assert balances(ids) == dict.fromkeys(ids, 1000 + 1234)
    ledger = LedgerService()
    for n, a in enumerate(ids, start=1):
        entries = [e for e in ledger.store.all_entries(a) if e.entry_id.startswith("batch:")]
        assert [(e.entry_id, e.amount) for e in entries] == [(f"batch:{task.task_id}:{n:05d}", 1234)]
        assert ledger.verify(a)["ok"]
    prog = svc.progress(w.property_id, task.task_id)
    assert prog["counts"][rules.DONE] == 20 and prog["settled"] and prog["task"].state == rules.FINISHED
    done = svc.items(w.property_id, task.task_id)
    assert {(i.result["before"], i.result["after"]) for i in done} == {(1000, 2234)}


def test_a_trip_batch_sets_intended_state_and_the_control_path_sends_and_confirms_it(svc, clock):
    m = Metered()
    accounts = [m.account(opening=5000) for _ in range(4)]
    meters = [m.meter(a) for a in accounts]
    site = m.sim()
    for mid in meters:
        site.add(SimMeter(mid))
    admin = owner(m.property_id)
    task = svc.create(admin, m.property_id, "trip", {"reason": "年度检修"},
                      selection={"rooms": ["B1/R001", "B1/R002", "B1/R003"]})
    assert task.total == 3
    assert [r["after"] for r in svc.preview(m.property_id, task.task_id)] == ["分闸（手动保持）"] * 3
    assert cstore.commands_of_meter(meters[0]) == []  # the dry run sent nothing
    svc.confirm(admin, m.property_id, task.task_id)
    assert drain() == 1
    states = {mid: mstore.load_meter(mid) for mid in meters}
    assert [states[x].manual_open for x in meters] == [True, True, True, False]  # intended: held open
    items = svc.items(m.property_id, task.task_id)
    assert all(i.state == rules.DONE and i.result["command_id"].startswith("trip-") for i in items)
    # the commands went to the site's queue: the meters trip and read back open
    cmds = site.take_commands()
    assert sorted(c["meter_id"] for c in cmds) == sorted(meters[:3]) and {c["op"] for c in cmds} == {"TRIP"}
    drain_uplink(uplink_url(), uplink_consumer.handler)
    assert [str(mstore.load_meter(x).relay_state) for x in meters] == ["open", "open", "open", "unknown"]  # the fourth was never polled
    assert [site.meters[x].relay_closed for x in meters] == [False, False, False, True]
    # by sheet rows of meter ids: this property's meter is found with its room, another is refused
    other = Metered()
    theirs = other.meter(other.account(opening=0))
    t2 = svc.create(admin, m.property_id, "close", {"reason": "恢复"},
                    rows=[{"row": 2, "meter_id": meters[3]}, {"row": 3, "meter_id": theirs}])
    items = svc.items(m.property_id, t2.task_id)
    assert [(i.state, i.target.label, i.target.account_id) for i in items[:1]] == [("pending", "1 号楼 R004",
                                                                                     accounts[3])]
    assert items[1].state == "failed" and items[1].reason == f"第 3 行：表计 {theirs} 不存在或不属于本物业"


def test_a_sheet_with_another_propertys_rooms_is_refused_per_item(svc):
    w, other = World(), World()
    mine = [w.account(opening=0) for _ in range(2)]
    theirs = other.account(opening=0)
    wb = Workbook()
    ws = wb.active
    ws.append(["楼栋编号", "房间编号", "账户编号", "金额（元）"])
    ws.append(["B1", "R001", None, 50])
    ws.append([None, None, theirs, "20.5"])  # the other property's account
    ws.append(["B1", "R002", None, "30.00"])
    ws.append(["B1", "R999", None, "1"])  # no such room here
    ws.append(["B1", "R002", None, "1.234"])  # three decimals
    buf = io.BytesIO()
    wb.save(buf)
    rows = read_sheet(buf.getvalue(), "recharge")
    admin = owner(w.property_id)
    task = svc.create(admin, w.property_id, "recharge", {}, rows=rows)
    items = svc.items(w.property_id, task.task_id)
    assert [(i.state, i.values.get("amount")) for i in items] == [
        ("pending", 5000), ("failed", 2050), ("pending", 3000), ("failed", 100), ("failed", None)]
    assert "不属于本物业" in items[1].reason and "第 3 行" in items[1].reason
    assert "R999" in items[3].reason and "最多两位小数" in items[4].reason
    svc.confirm(admin, w.property_id, task.task_id)
    drain()
    assert balances(mine) == {mine[0]: 5000, mine[1]: 3000}
    assert balances([theirs]) == {theirs: 0}
    c = svc.progress(w.property_id, task.task_id)["counts"]
    assert (c[rules.DONE], c[rules.FAILED]) == (2, 3)


def test_cancel_settles_what_has_not_started_and_a_scheduled_task_never_runs(svc, clock, setenv):
    setenv("FEIKONG_BATCH_START_ARN", "arn:aws:lambda:cn-north-1:123456789012:function:feikong-dev-batchDue")
    setenv("FEIKONG_BATCH_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/feikong-dev-batch-scheduler")
    w = World()
    ids = [w.account(opening=100) for _ in range(3)]
    admin = owner(w.property_id)
    task = svc.create(admin, w.property_id, "recharge", {"amount": "1"}, selection={"buildings": ["B1"]})
    svc.confirm(admin, w.property_id, task.task_id, run_at="2026-11-20T18:30")  # Shanghai time
    t = svc.task(w.property_id, task.task_id)
    assert (t.state, t.run_at) == (rules.SCHEDULED, "2026-11-20T10:30:00.000000Z")
    made = schedules.get(t.schedule_name)
    assert made["ScheduleExpression"] == "at(2026-11-20T10:30:00)"
    assert json.loads(made["Target"]["Input"]) == {"task_id": task.task_id}
    svc.cancel(admin, w.property_id, task.task_id)
    assert schedules.get(t.schedule_name) is None
    drain()
    clock.advance(hours=9)
    assert batch_fn.due({}, LambdaContext()) == {"started": []}
    assert balances(ids) == dict.fromkeys(ids, 100)
    c = svc.progress(w.property_id, task.task_id)["counts"]
    assert c[rules.CANCELLED] == 3

    # a running task: cancelled before its messages are handled, nothing is posted
    task2 = svc.create(admin, w.property_id, "recharge", {"amount": "1"}, selection={"buildings": ["B1"]})
    svc.confirm(admin, w.property_id, task2.task_id)
    svc.cancel(admin, w.property_id, task2.task_id)
    drain()
    assert balances(ids) == dict.fromkeys(ids, 100)
    assert svc.progress(w.property_id, task2.task_id)["counts"][rules.CANCELLED] == 3


def test_a_scheduled_task_starts_when_due_by_its_schedule_or_the_minute_sweep(svc, clock):
    w = World()
    ids = [w.account(opening=0) for _ in range(2)]
    admin = owner(w.property_id)
    task = svc.create(admin, w.property_id, "recharge", {"amount": "2.50"}, selection={"buildings": ["B1"]})
    svc.confirm(admin, w.property_id, task.task_id, run_at=(T0 + timedelta(minutes=30)).isoformat())
    assert batch_fn.due({}, LambdaContext()) == {"started": []}  # not yet
    assert batch_fn.due({"task_id": task.task_id}, LambdaContext())["started"] is False
    clock.advance(minutes=31)
    assert batch_fn.due({}, LambdaContext()) == {"started": [task.task_id]}
    assert batch_fn.due({"task_id": task.task_id}, LambdaContext())["started"] is False  # once
    drain()
    assert balances(ids) == dict.fromkeys(ids, 250)


def test_retry_runs_the_failed_items_again_and_still_posts_once(svc, clock):
    w = World()
    rich, poor = w.account(opening=10000), w.account(opening=500)
    admin = owner(w.property_id)
    task = svc.create(admin, w.property_id, "deduct", {"amount": "20", "memo": "维修费"},
                      selection={"buildings": ["B1"]})
    svc.confirm(admin, w.property_id, task.task_id)
    drain()
    items = svc.items(w.property_id, task.task_id)
    assert [i.state for i in items] == [rules.DONE, rules.FAILED]
    assert "余额不足" in items[1].reason
    assert balances([rich, poor]) == {rich: 8000, poor: 500}
    # the poor room pays at the counter (another path), then the failed item is retried
    LedgerService().post(account_id=poor, entry_id="cash:R-1", kind="recharge", amount=3000, cause="test", actor="t")
    out = svc.retry(admin, w.property_id, task.task_id)
    assert (out["attempt"], out["items"]) == (2, 1)
    drain()
    # a late copy of the first attempt's message changes nothing
    svc.send([rules.message(task.task_id, 1, ["00001", "00002"])])
    drain()
    assert balances([rich, poor]) == {rich: 8000, poor: 1500}
    items = svc.items(w.property_id, task.task_id)
    assert [(i.state, i.attempt) for i in items] == [(rules.DONE, 1), (rules.DONE, 2)]
    with pytest.raises(Conflict, match="没有失败的项目"):
        svc.retry(admin, w.property_id, task.task_id)
    with pytest.raises(Conflict, match="任务已结束"):
        svc.cancel(admin, w.property_id, task.task_id)


def test_roles_and_bad_input_are_refused_before_anything_is_written(svc):
    w = World()
    w.account(opening=0)
    operator = AdminPrincipal("a-op", "运营", "co", "operator", (w.property_id,))
    with pytest.raises(Forbidden):
        svc.create(operator, w.property_id, "recharge", {"amount": "1"}, selection={"buildings": ["B1"]})
    with pytest.raises(Forbidden):
        svc.create(owner("p-elsewhere"), w.property_id, "trip", {"reason": "x"}, selection={"buildings": ["B1"]})
    cases = [("nope", {}, {"buildings": ["B1"]}, "batch_op_invalid"),
             ("recharge", {"amount": "-1"}, {"buildings": ["B1"]}, "amount_invalid"),
             ("trip", {"reason": " "}, {"buildings": ["B1"]}, "reason_required"),
             ("recharge", {"amount": "1"}, {}, "selection_empty"),
             ("recharge", {"amount": "1"}, {"buildings": ["Z9"]}, "building_not_found"),
             ("settings", {"alarm_levels": "10,20"}, {"buildings": ["B1"]}, "alarm_levels_invalid")]
    for op, params, sel, code in cases:
        with pytest.raises(ValidationError) as e:
            svc.create(owner(w.property_id), w.property_id, op, params, selection=sel)
        assert e.value.code == code, (op, params)
    assert svc.tasks(w.property_id) == []
    with pytest.raises(ValidationError) as e:
        read_sheet(b"not a workbook", "recharge")
    assert e.value.code == "sheet_invalid" and "Excel" in e.value.message
