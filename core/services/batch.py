"""Batch operations (批量操作, docs/batch.md): one operation over many meters, accounts or
rooms, fanned out over the batch queue.

- `create`: the admin's selection (buildings, floors, rooms, meters, accounts) or an
  uploaded sheet's rows, resolved to items in the property; a row naming nothing of this
  property is an item failed with its reason. The task is a draft: nothing changes yet.
- `preview`: the dry run, per item what would change (before -> after), read now.
- `confirm`: run now (the items go on the queue in messages of `per_message`) or at a
  time (an EventBridge Scheduler one-time schedule invokes batchDue; the per-minute batchDue
  starts any scheduled task that is due, which is also the net under a lost schedule).
- `handle`: the worker's message: its items are read, marked running, each applied through
  the service that owns the rule (the same calls the room actions make: Control's manual
  relay, account settings and credit, the ledger with the control hook, tariffs, directory),
  and their results written. A redelivered message skips what is settled; an item found
  running (a crash after it started) is applied again, which changes nothing twice: money
  posts under an entry id derived from (task, item), the others check the target's state.
- `progress`, `retry` (the failed items, and items of a running task stuck for 15 minutes:
  a new attempt, still idempotent), `cancel` (what has not started).
Each of create / confirm / retry / cancel is one record in the action log; an item's record
is the item itself (target, before, after, reason).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from core.domain import batch as rules
from core.domain import control as policy
from core.domain.admins import AdminPrincipal
from core.domain.batch import ACCOUNT, METER, ROOM, Item, Target, Task
from core.domain.clock import utcnow
from core.domain.errors import Conflict, FeikongError, Forbidden, InsufficientFunds, NotFound, ValidationError
from core.domain.ledger import ACCOUNT_OPEN, EntryKind, format_time
from core.domain.writes import AddEvent
from core.integrations import queues, schedules
from core.services import action_log, directory, tariffs
from core.settings import get_settings
from core.store import batch as store
from core.store import directory as dstore
from core.store import ledger as ledger_store
from core.store import meters as meters_store

log = Logger(service="feikong", child=True)

STALE = timedelta(minutes=15)  # a running task's item unsettled this long is retried with the failed ones


def _send_to_queue(bodies: list[str]) -> None:
    queues.send_batch(queues.batch_url(), bodies)


def _who_can(admin: AdminPrincipal, permission: str, property_id: str) -> None:
    if not admin.can(permission, property_id):
        raise Forbidden("没有权限执行此操作")


class Batch:
    def __init__(self, actions=None, clock: Callable[[], datetime] | None = None,
                 send: Callable[[list[str]], None] = _send_to_queue, per_message: int = rules.ITEMS_PER_MESSAGE,
                 schedule: Callable[..., str] | None = None) -> None:
        if actions is None:
            from core.services.payments import Payments
            from core.services.room_actions import RoomActions

            actions = RoomActions(Payments(clock=clock or utcnow))
        self.actions = actions  # the room actions' Payments and Control: the same paths a single room takes
        self.clock = clock or actions.clock
        self.send = send
        self.per_message = per_message
        self.schedule = schedule or schedules.create_one_time

    @property
    def control(self):
        return self.actions.control

    def _now(self) -> str:
        return format_time(self.clock())

    # -- create ----------------------------------------------------------------------------

    def create(self, admin: AdminPrincipal, property_id: str, op: object, params: object, *,
               selection: dict | None = None, rows: list[dict] | None = None, title: str = "", ip: str = "") -> Task:
        """A draft task over a selection or a sheet's rows (see the module doc)."""
        op = rules.require_op(op)
        label, kind, permission = rules.OPERATIONS[op]
        _who_can(admin, permission, property_id)
        params = rules.check_params(op, params, per_row_amounts=rows is not None)
        if op == "tariff":
            tariffs.export_plan(property_id, params["plan_id"])  # the property's own plan
        targets = self._from_rows(property_id, kind, op, rows) if rows is not None \
            else self._from_selection(property_id, kind, selection or {})
        if not targets:
            raise ValidationError("没有选中任何可操作的房间或表计", code="selection_empty", field="rooms")
        if len(targets) > rules.MAX_ITEMS:
            raise ValidationError(f"一次最多 {rules.MAX_ITEMS} 项，已选 {len(targets)} 项", code="too_many_items")
        now = self.clock()
        task_id = f"bt-{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
        at = format_time(now)
        items = [Item(task_id, rules.item_id(n), target, values, state=rules.FAILED if problem else rules.PENDING,
                      reason=problem, updated_at=at)
                 for n, (target, values, problem) in enumerate(targets, start=1)]
        task = Task(task_id, property_id, op, params, rules.DRAFT, len(items), at, admin.admin_id, admin.name,
                    title=(title or "").strip()[:50])
        store.create(task, items)
        refused = sum(1 for i in items if i.state == rules.FAILED)
        action_log.record(admin, "batch_created", property_id=property_id, target=task_id, ip=ip, clock=self.clock,
                          after={"op": op, "label": label, "total": len(items), "refused": refused, "params": params},
                          record_id=f"batch-created-{task_id}")
        log.info("batch task created", task_id=task_id, op=op, items=len(items), refused=refused)
        return task

    def _tree(self, property_id: str):
        prop, buildings, floors, rooms = dstore.property_tree(property_id)
        if prop is None:
            raise NotFound("物业不存在", code="property_not_found")
        return buildings, floors, rooms

    def _accounts_by_room(self, property_id: str, building_ids) -> dict[tuple[str, str], list]:
        out: dict[tuple[str, str], list] = {}
        for b in sorted(set(building_ids)):
            for a in dstore.accounts_of_building(property_id, b):
                if a.status == ACCOUNT_OPEN and a.property_id == property_id:
                    out.setdefault((b, a.room_id), []).append(a)
        for v in out.values():
            v.sort(key=lambda a: (a.opened_at, a.account_id))
        return out

    def _from_selection(self, property_id: str, kind: str, sel: dict) -> list[tuple[Target, dict, str]]:
        """Rooms picked by building, floor (`b/f`) or room (`b/r`); meters or accounts by id.
        Vacant rooms are left out of account and meter operations."""
        buildings, floors, rooms = self._tree(property_id)
        bnames = {b.building_id: b.name for b in buildings}

        def listed(key: str) -> list[str]:
            v = sel.get(key) or []
            return [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str) and x.strip()]

        wanted_b, wanted_f, wanted_r = set(listed("buildings")), set(listed("floors")), set(listed("rooms"))
        picked = [r for r in sorted(rooms, key=lambda r: (r.building_id, r.floor_id, r.room_id))
                  if r.building_id in wanted_b or f"{r.building_id}/{r.floor_id}" in wanted_f
                  or f"{r.building_id}/{r.room_id}" in wanted_r]
        unknown = wanted_b - set(bnames)
        if unknown:
            raise ValidationError(f"楼栋 {sorted(unknown)[0]} 不存在", code="building_not_found", field="buildings")
        label = {(r.building_id, r.room_id): f"{bnames.get(r.building_id, r.building_id)} {r.name}" for r in rooms}
        out: list[tuple[Target, dict, str]] = []
        if kind == ROOM:
            return [(Target(ROOM, r.building_id, r.room_id, label=label[(r.building_id, r.room_id)]), {}, "")
                    for r in picked]
        accounts = self._accounts_by_room(property_id, {r.building_id for r in picked})
        meters = self._meters_of_property(property_id) if kind == METER else {}
        seen: set[str] = set()
        for r in picked:
            for a in accounts.get((r.building_id, r.room_id), []):
                where = label[(r.building_id, r.room_id)]
                if kind == ACCOUNT:
                    out.append((Target(ACCOUNT, r.building_id, r.room_id, a.account_id, label=where), {}, ""))
                    seen.add(a.account_id)
                    continue
                for m in meters.get(a.account_id, []):
                    out.append((Target(METER, r.building_id, r.room_id, a.account_id, m, label=where), {}, ""))
                    seen.add(m)
        ids = listed("meters") if kind == METER else listed("accounts") if kind == ACCOUNT else []
        if ids:
            rows = [{"meter_id" if kind == METER else "account_id": i, "row": 0} for i in ids if i not in seen]
            out += self._from_rows(property_id, kind, "", rows, tree=(buildings, rooms), accounts=accounts)
        return out

    @staticmethod
    def _meters_of_property(property_id: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for m in meters_store.monitor_meters(property_id):
            if not m.retired:
                out.setdefault(m.account_id, []).append(m.meter_id)
        for v in out.values():
            v.sort()
        return out

    def _from_rows(self, property_id: str, kind: str, op: str, rows: list[dict] | None, *, tree=None,
                   accounts=None) -> list[tuple[Target, dict, str]]:
        """A sheet's rows: each names a room (楼栋编号 + 房间编号), a meter (表号) or an account
        (账户编号) of this property; one that does not is a failed item with the reason."""
        rows = rows or []
        if tree is None:
            buildings, _, rooms = self._tree(property_id)
        else:
            buildings, rooms = tree
        bnames = {b.building_id: b.name for b in buildings}
        room_names = {(r.building_id, r.room_id): f"{bnames.get(r.building_id, r.building_id)} {r.name}" for r in rooms}
        if accounts is None:
            accounts = self._accounts_by_room(property_id, {r.get("building_id") for r in rows
                                                            if r.get("building_id") in bnames})
        meter_ids = [r["meter_id"] for r in rows if r.get("meter_id")]
        meters = {m.meter_id: m for m in dstore.meters(meter_ids)} if meter_ids else {}
        meter_accounts = {a.account_id: a for a in dstore.accounts(
            {m.account_id for m in meters.values() if m.property_id == property_id})} if meters else {}
        account_ids = [r["account_id"] for r in rows if r.get("account_id")]
        accts = {a.account_id: a for a in dstore.accounts(account_ids)} if account_ids else {}
        by_account_meters = self._meters_of_property(property_id) if kind == METER and any(
            not r.get("meter_id") for r in rows) else {}
        out: list[tuple[Target, dict, str]] = []
        for r in rows:
            values = {k: r[k] for k in ("amount", "phone", "tenant_name", "name") if k in r}
            where = f"第 {r['row']} 行：" if r.get("row") else ""
            b, room = r.get("building_id", ""), r.get("room_id", "")
            if r.get("problem"):
                out.append((Target(kind, b, room, r.get("account_id", ""), r.get("meter_id", ""),
                                   label=f"{b} {room}".strip() or r.get("meter_id", "") or r.get("account_id", "")),
                            values, r["problem"]))
                continue
            if kind == METER and r.get("meter_id"):
                m = meters.get(r["meter_id"])
                if m is None or m.property_id != property_id or m.retired:
                    out.append((Target(METER, meter_id=r["meter_id"], label=r["meter_id"]), values,
                                f"{where}表计 {r['meter_id']} 不存在或不属于本物业"))
                    continue
                a = meter_accounts.get(m.account_id)
                bb, rr = (a.building_id, a.room_id) if a else ("", "")
                out.append((Target(METER, bb, rr, m.account_id, m.meter_id,
                                   label=room_names.get((bb, rr), m.meter_id)), values, ""))
                continue
            if kind == ACCOUNT and r.get("account_id"):
                a = accts.get(r["account_id"])
                if a is None or a.property_id != property_id:
                    out.append((Target(ACCOUNT, account_id=r["account_id"], label=r["account_id"]), values,
                                f"{where}账户 {r['account_id']} 不存在或不属于本物业"))
                    continue
                out.append((Target(ACCOUNT, a.building_id, a.room_id, a.account_id,
                                   label=room_names.get((a.building_id, a.room_id), a.account_id)), values,
                            "" if a.status == ACCOUNT_OPEN else f"{where}账户已销户"))
                continue
            if (b, room) not in room_names:
                out.append((Target(kind, b, room, label=f"{b} {room}".strip()), values,
                            f"{where}房间 {b}/{room} 不存在或不属于本物业"))
                continue
            name = room_names[(b, room)]
            if kind == ROOM:
                problem = "" if values.get("phone") else f"{where}请填写手机号"
                out.append((Target(ROOM, b, room, label=name), values, problem))
                continue
            open_accounts = accounts.get((b, room), [])
            if not open_accounts:
                out.append((Target(kind, b, room, label=name), values, f"{where}房间 {name} 没有在用账户"))
                continue
            a = open_accounts[0]
            if kind == ACCOUNT:
                out.append((Target(ACCOUNT, b, room, a.account_id, label=name), values, ""))
                continue
            ms = by_account_meters.get(a.account_id, [])
            if not ms:
                out.append((Target(METER, b, room, a.account_id, label=name), values, f"{where}房间 {name} 没有表计"))
            for m in ms:
                out.append((Target(METER, b, room, a.account_id, m, label=name), values, ""))
        return out

    # -- reads -----------------------------------------------------------------------------

    def selection_tree(self, property_id: str) -> list[dict]:
        """Buildings > floors > rooms (with each room's open account, if any), for the
        selection form: one query of the directory partition and one per building."""
        buildings, floors, rooms = self._tree(property_id)
        accounts = self._accounts_by_room(property_id, [b.building_id for b in buildings])
        out = []
        for b in sorted(buildings, key=lambda b: b.building_id):
            fl = []
            for f in sorted((f for f in floors if f.building_id == b.building_id), key=lambda f: (f.level, f.floor_id)):
                rs = [{"room": r, "account": (accounts.get((b.building_id, r.room_id)) or [None])[0]}
                      for r in sorted(rooms, key=lambda r: r.room_id)
                      if r.building_id == b.building_id and r.floor_id == f.floor_id]
                fl.append({"floor": f, "rooms": rs})
            out.append({"building": b, "floors": fl})
        return out

    def plans(self, property_id: str) -> list[dict]:
        return tariffs.list_plans(property_id, self.clock())

    def task(self, property_id: str, task_id: str) -> Task:
        t = store.get_task(task_id) if isinstance(task_id, str) and task_id else None
        if t is None or t.property_id != property_id:
            raise NotFound("批量任务不存在", code="batch_not_found")
        return t

    def tasks(self, property_id: str, limit: int = 50) -> list[Task]:
        return store.tasks_of_property(property_id, limit)

    def items(self, property_id: str, task_id: str, after: str | None = None, limit: int = rules.PAGE,
              state: str | None = None) -> list[Item]:
        self.task(property_id, task_id)
        if state:
            return [i for i in store.items(task_id) if i.state == state][:limit] if state in rules.ITEM_STATES else []
        return store.items(task_id, after, limit)

    def progress(self, property_id: str, task_id: str) -> dict:
        """Counts by item state; a running task with nothing left to do is marked finished."""
        t = self.task(property_id, task_id)
        states = store.item_states(task_id)
        c = rules.counts([s for _, s, _ in states])
        if t.state == rules.TASK_RUNNING and rules.settled(c):
            if store.move_task(task_id, rules.FINISHED, (rules.TASK_RUNNING,), self._now(), finished_at=self._now()):
                log.info("batch task finished", task_id=task_id, **c)
            t = store.get_task(task_id) or t
        return {"task": t, "counts": c, "total": len(states), "percent": rules.percent(c),
                "settled": rules.settled(c)}

    def preview(self, property_id: str, task_id: str, after: str | None = None,
                limit: int = rules.PAGE) -> list[dict]:
        """The dry run of a page of items: per item its target, what it is now and what it
        would be (read now; nothing is written)."""
        t = self.task(property_id, task_id)
        page = store.items(task_id, after, limit)
        now = self._current(t, page)
        out = []
        for it in page:
            if it.state == rules.FAILED and it.reason and not it.result:
                out.append({"item": it, "before": "—", "after": "—", "note": it.reason, "refused": True})
                continue
            before, after, note = rules.change(t.op, t.params, it.values, now.get(it.item_id, {}))
            out.append({"item": it, "before": before, "after": after, "note": note, "refused": False})
        return out

    def _current(self, t: Task, page: list[Item]) -> dict[str, dict]:
        """What the dry run compares against, per item id."""
        out: dict[str, dict] = {}
        if t.target_kind == METER:
            ms = {m.meter_id: m for m in self.control.meters.load_meters(
                tuple(i.target.meter_id for i in page if i.target.meter_id))}
            for i in page:
                m = ms.get(i.target.meter_id)
                if m is not None:
                    out[i.item_id] = {"plan_id": m.plan_id, "relay": m.relay_state, "manual_open": m.manual_open}
        elif t.target_kind == ACCOUNT:
            accts = {a.account_id: a for a in dstore.accounts([i.target.account_id for i in page
                                                               if i.target.account_id])}
            for i in page:
                a = accts.get(i.target.account_id)
                if a is not None:
                    out[i.item_id] = {"balance": a.balance, "alarm_levels": list(a.alarm_levels),
                                      "overdraft_limit": a.overdraft_limit, "keep_supply": a.keep_supply}
        else:
            accounts = self._accounts_by_room(t.property_id, {i.target.building_id for i in page})
            for i in page:
                found = accounts.get((i.target.building_id, i.target.room_id), [])
                out[i.item_id] = {"open_account": found[0].account_id if found else ""}
        return out

    # -- confirm, start, schedule ----------------------------------------------------------

    def confirm(self, admin: AdminPrincipal, property_id: str, task_id: str, run_at: object = None,
                ip: str = "") -> Task:
        """Run a draft now, or at `run_at` (local time, or ISO with an offset)."""
        t = self.task(property_id, task_id)
        _who_can(admin, t.permission, property_id)
        at = rules.parse_run_at(run_at, self.clock())
        if t.state != rules.DRAFT:
            raise Conflict("任务已确认或已取消", code="batch_not_draft")
        now = self._now()
        if at is None:
            if not store.move_task(task_id, rules.TASK_RUNNING, (rules.DRAFT,), now, started_at=now):
                raise Conflict("任务已确认或已取消", code="batch_not_draft")
            self._fan_out(t, t.attempt, [i.item_id for i in store.items(task_id) if i.state == rules.PENDING])
        else:
            run_iso = format_time(at)
            name = f"feikong-{get_settings().stage}-{task_id}"
            if not store.move_task(task_id, rules.SCHEDULED, (rules.DRAFT,), now, run_at=run_iso,
                                   schedule_name=name):
                raise Conflict("任务已确认或已取消", code="batch_not_draft")
            self._make_schedule(name, at, task_id)
        action_log.record(admin, "batch_confirmed", property_id=property_id, target=task_id, ip=ip, clock=self.clock,
                          after={"op": t.op, "total": t.total, "run_at": format_time(at) if at else "now"},
                          record_id=f"batch-confirmed-{task_id}")
        return store.get_task(task_id) or t

    def _make_schedule(self, name: str, at: datetime, task_id: str) -> None:
        s = get_settings()
        if not (s.batch_start_arn and s.batch_scheduler_role_arn):
            log.info("no one-time schedule (no target configured): batchDue starts the task", task_id=task_id)
            return
        try:
            self.schedule(name, at, s.batch_start_arn, s.batch_scheduler_role_arn, {"task_id": task_id})
        except Exception:  # the per-minute batchDue is the net under a schedule not made
            log.exception("one-time schedule not made; batchDue will start the task", task_id=task_id)

    def _fan_out(self, t: Task, attempt: int, item_ids: list[str]) -> int:
        bodies = rules.messages(t.task_id, attempt, item_ids, self.per_message)
        if bodies:
            self.send(bodies)
        log.info("batch items queued", task_id=t.task_id, items=len(item_ids), messages=len(bodies), attempt=attempt)
        return len(bodies)

    def start(self, task_id: str) -> dict:
        """A scheduled task whose time has come: running, its items on the queue (the
        one-time schedule's and batchDue's call; a task started or cancelled before is left)."""
        t = store.get_task(task_id)
        if t is None or t.state != rules.SCHEDULED or t.run_at > self._now():
            return {"task_id": task_id, "started": False}
        now = self._now()
        if not store.move_task(task_id, rules.TASK_RUNNING, (rules.SCHEDULED,), now, started_at=now):
            return {"task_id": task_id, "started": False}
        sent = self._fan_out(t, t.attempt, [i.item_id for i in store.items(task_id) if i.state == rules.PENDING])
        return {"task_id": task_id, "started": True, "messages": sent}

    def start_due(self) -> dict:
        started = [r["task_id"] for r in (self.start(i) for i in store.due_tasks(self._now())) if r["started"]]
        if started:
            log.info("scheduled batch tasks started", tasks=started)
        return {"started": started}

    # -- retry, cancel ---------------------------------------------------------------------

    def retry(self, admin: AdminPrincipal, property_id: str, task_id: str, ip: str = "") -> dict:
        """A new attempt of the failed items (and, in a running task, of items unsettled for
        15 minutes: their message was lost). Still idempotent per (task, item)."""
        t = self.task(property_id, task_id)
        _who_can(admin, t.permission, property_id)
        if t.state not in (rules.TASK_RUNNING, rules.FINISHED):
            raise Conflict("只有执行中或已完成的任务可以重试", code="batch_not_retryable")
        stale_before = format_time(self.clock() - STALE)
        todo = [i for i in store.items(task_id)
                if i.state == rules.FAILED or (t.state == rules.TASK_RUNNING and i.state in (rules.PENDING, rules.RUNNING)
                                               and i.updated_at and i.updated_at < stale_before)]
        if not todo:
            raise Conflict("没有失败的项目需要重试", code="nothing_to_retry")
        attempt = t.attempt + 1
        now = self._now()
        if not store.move_task(task_id, rules.TASK_RUNNING, (t.state,), now, attempt=attempt, finished_at=None):
            raise Conflict("任务状态已变化，请刷新后重试", code="batch_state_changed")
        store.put_items([Item(i.task_id, i.item_id, i.target, i.values, rules.PENDING, "", {}, attempt, now)
                         for i in todo])
        self._fan_out(t, attempt, [i.item_id for i in todo])
        action_log.record(admin, "batch_retry", property_id=property_id, target=task_id, ip=ip, clock=self.clock,
                          after={"op": t.op, "attempt": attempt, "items": len(todo)},
                          record_id=f"batch-retry-{task_id}-{attempt}")
        return {"task_id": task_id, "attempt": attempt, "items": len(todo)}

    def cancel(self, admin: AdminPrincipal, property_id: str, task_id: str, ip: str = "") -> Task:
        """Cancel what has not started: a draft or scheduled task whole (its schedule is
        deleted), a running task's items still waiting. The workers settle the items
        (cancelled), so a message already on its way finds the task cancelled."""
        t = self.task(property_id, task_id)
        _who_can(admin, t.permission, property_id)
        if t.state == rules.TASK_RUNNING:
            t = self.progress(property_id, task_id)["task"]  # a task with nothing left is finished
        if t.state not in (rules.DRAFT, rules.SCHEDULED, rules.TASK_RUNNING):
            raise Conflict("任务已结束，不能取消", code="batch_not_cancellable")
        now = self._now()
        if not store.move_task(task_id, rules.TASK_CANCELLED, (t.state,), now, finished_at=now):
            raise Conflict("任务状态已变化，请刷新后重试", code="batch_state_changed")
        if t.schedule_name and t.state == rules.SCHEDULED:
            try:
                schedules.delete(t.schedule_name)
            except Exception:  # batchDue never starts a cancelled task
                log.exception("schedule not deleted", task_id=task_id)
        if t.state in (rules.DRAFT, rules.SCHEDULED):  # nothing was queued: the workers settle them as cancelled
            self._fan_out(t, t.attempt, [i.item_id for i in store.items(task_id) if i.state == rules.PENDING])
        action_log.record(admin, "batch_cancelled", property_id=property_id, target=task_id, ip=ip, clock=self.clock,
                          after={"op": t.op, "was": t.state}, record_id=f"batch-cancelled-{task_id}")
        return store.get_task(task_id) or t

    # -- the worker ------------------------------------------------------------------------

    def handle(self, body: str) -> dict:
        try:
            m = rules.parse_message(body)
        except ValidationError as e:  # never valid on a retry either: logged and dropped
            log.error("batch message refused", reason=e.message, body=str(body)[:200])
            return {"status": "refused"}
        t = store.get_task(m.task_id)
        if t is None or t.state not in (rules.TASK_RUNNING, rules.TASK_CANCELLED):
            log.warning("batch message for a task not running", task_id=m.task_id, state=t.state if t else None)
            return {"status": "ignored"}
        items = [i for i in store.get_items(m.task_id, m.items) if i.attempt == m.attempt]
        now = self._now()
        if t.state == rules.TASK_CANCELLED:
            cancelled = [Item(i.task_id, i.item_id, i.target, i.values, rules.CANCELLED, "任务已取消", {}, i.attempt, now)
                         for i in items if i.state == rules.PENDING]
            store.put_items(cancelled)
            items = [i for i in items if i.state == rules.RUNNING]  # started before the cancel: finished
        todo = [i for i in items if i.state in (rules.PENDING, rules.RUNNING)]
        if not todo:
            return {"status": "ok", "done": 0}
        again = {i.item_id for i in todo if i.state == rules.RUNNING}  # a crash after it started
        store.put_items([Item(i.task_id, i.item_id, i.target, i.values, rules.RUNNING, "", {}, i.attempt, now)
                         for i in todo])
        context = self._load(t, todo)
        results: list[Item] = []
        try:
            for i in todo:
                state, reason, result = self._apply(t, i, context, i.item_id in again)
                results.append(Item(i.task_id, i.item_id, i.target, i.values, state, reason, result, i.attempt,
                                    self._now()))
        finally:
            store.put_items(results)  # what is done is recorded even if the message must come again
        counts = rules.counts([r.state for r in results])
        return {"status": "ok", **{k: v for k, v in counts.items() if v}}

    def _load(self, t: Task, todo: list[Item]) -> dict:
        """What the items of a message need, read in as few requests as possible."""
        if t.target_kind == METER:
            return {"meters": {m.meter_id: m for m in self.control.meters.load_meters(
                tuple(i.target.meter_id for i in todo if i.target.meter_id))}}
        if t.target_kind == ACCOUNT:
            # one consistent BatchGet; the ledger plans this message's postings on these states
            # (no read of its own per posting; a state gone stale costs one refused transaction)
            details = ledger_store.account_details([i.target.account_id for i in todo if i.target.account_id])
            self.control.ledger.remember(st for _, st in details)
            return {"accounts": {a.account_id: a for a, _ in details}}
        return {"accounts": self._accounts_by_room(t.property_id, {i.target.building_id for i in todo}),
                "rooms": {(r.building_id, r.room_id) for r in self._tree(t.property_id)[2]}}

    def _apply(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        """One item: (state, reason, result). A refusal of the rules is the item's failure
        with the reason in Chinese; anything else fails the message (it comes again)."""
        try:
            return getattr(self, f"_do_{t.op}")(t, item, context, again)
        except FeikongError as e:
            return rules.FAILED, e.message, {"code": e.code}

    # each `_do_<op>`: `again` means the item was found running (it may have been applied)

    def _meter(self, t: Task, item: Item, context: dict):
        m = context["meters"].get(item.target.meter_id)
        if m is None or m.property_id != t.property_id:
            raise NotFound("表计不存在或不属于本物业", code="meter_not_found")
        if m.retired:
            raise Conflict("该表已被更换，不能操作", code="meter_retired")
        return m

    def _account(self, t: Task, item: Item, context: dict):
        a = context["accounts"].get(item.target.account_id)
        if a is None or a.property_id != t.property_id:
            raise NotFound("账户不存在或不属于本物业", code="account_not_found")
        if a.status != ACCOUNT_OPEN:
            raise Conflict("账户已销户", code="account_closed")
        return a

    def _do_tariff(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        m = self._meter(t, item, context)
        plan = t.params["plan_id"]
        result = {"before": m.plan_id or "", "after": plan}
        if m.plan_id == plan:
            return (rules.DONE, "已设置电价方案", result) if again else (rules.SKIPPED, "方案未变化，无需修改", result)
        tariffs.assign(t.property_id, m.meter_id, plan)
        return rules.DONE, "已设置电价方案", result

    def _do_trip(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        return self._relay(t, item, context, again, policy.TRIP)

    def _do_close(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        return self._relay(t, item, context, again, policy.CLOSE)

    def _relay(self, t: Task, item: Item, context: dict, again: bool, op: str) -> tuple[str, str, dict]:
        """Through Control.manual_relay, as a single room's manual trip / close: the meter's
        intended state is set (a TRIP holds it open) and the command goes out; the
        reconciler retries a lost one. Found running: a meter already held in the intended
        state with its command live or read back is not ordered again."""
        m = self._meter(t, item, context)
        target = policy.relay_target(op)
        before = {"relay": str(m.relay_state), "manual_open": m.manual_open}
        text = "已下发分闸命令" if op == policy.TRIP else "已下发合闸命令"
        if again and m.manual_open == (op == policy.TRIP):
            live = self.control.live_relay(m)
            if str(m.relay_state) == target or (live is not None and live.op == op):
                return rules.DONE, text, {"before": before, "command_id": live.command_id if live else "",
                                          "after": {"relay": target, "manual_open": op == policy.TRIP}}
        command = self.control.manual_relay(t.property_id, m.meter_id, op, t.params["reason"], t.actor)
        return rules.DONE, text, {"before": before, "command_id": command.command_id,
                                  "after": {"relay": target, "manual_open": op == policy.TRIP}}

    def _do_settings(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        a = self._account(t, item, context)
        now = {"alarm_levels": list(a.alarm_levels) or None, "overdraft_limit": a.overdraft_limit,
               "keep_supply": a.keep_supply}
        wanted = dict(t.params)
        before = {k: now[k] for k in wanted}
        if all(now[k] == v for k, v in wanted.items()):
            return (rules.DONE, "设置已修改", {"before": before, "after": wanted}) if again \
                else (rules.SKIPPED, "设置未变化，无需修改", {"before": before, "after": wanted})
        decision = self.control.configure_account(t.property_id, a.account_id, t.actor, **wanted)
        return rules.DONE, "设置已修改", {"before": before, "after": wanted, "decision": decision.reason or ""}

    def _do_recharge(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        a = self._account(t, item, context)
        amount = rules.item_amount(t, item)
        entry = self.control.credit(account_id=a.account_id, entry_id=rules.entry_id(t.task_id, item.item_id),
                                    kind=str(EntryKind.RECHARGE), amount=amount, cause=f"batch:{t.task_id}",
                                    actor=t.actor, memo=(t.params.get("memo") or "批量充值")[:100])
        return rules.DONE, f"已充值 {rules.yuan_text(amount)} 元", {
            "entry_id": entry.entry_id, "amount": amount, "before": entry.balance_after - amount,
            "after": entry.balance_after, "duplicate": entry.duplicate}

    def _do_deduct(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        """A debit against the tenant (adjust_debit: within the overdraft) with the control
        hook in its transaction (alarms, a cut decided), as a deducted charge is posted."""
        a = self._account(t, item, context)
        amount = rules.item_amount(t, item)
        eid = rules.entry_id(t.task_id, item.item_id)
        decided: dict = {}
        now = self.clock()

        def hook(st, entry):
            changes, events, decision = self.control.decide_after(st, entry, now)
            decided["d"] = (st, decision)
            return changes, [AddEvent(e) for e in events]

        try:
            entry = self.control.ledger.post(hook=hook, account_id=a.account_id, entry_id=eid,
                                             kind=str(EntryKind.ADJUST_DEBIT), amount=amount,
                                             cause=f"batch:{t.task_id}", actor=t.actor,
                                             memo=(t.params.get("memo") or "批量扣款")[:100])
        except InsufficientFunds:
            raise Conflict(f"余额不足（含透支额度），无法扣款 {rules.yuan_text(amount)} 元",
                           code="insufficient_funds") from None
        if "d" in decided and not entry.duplicate:
            st, decision = decided["d"]
            if decision.trip_now:
                self.control.apply(st, decision, f"batch:{t.task_id}")
        return rules.DONE, f"已扣款 {rules.yuan_text(amount)} 元", {
            "entry_id": entry.entry_id, "amount": amount, "before": entry.balance_after + amount,
            "after": entry.balance_after, "duplicate": entry.duplicate}

    def _do_open_account(self, t: Task, item: Item, context: dict, again: bool) -> tuple[str, str, dict]:
        """An account from the task's template (overdraft) for the row's tenant (found by
        phone among the property's tenants, else registered with the row's name), under an
        account id derived from (task, item)."""
        b, r = item.target.building_id, item.target.room_id
        if (b, r) not in context["rooms"]:
            raise NotFound("房间不存在或不属于本物业", code="room_not_found")
        account_id = rules.derived_id("a", t.task_id, item.item_id)
        found = context["accounts"].get((b, r), [])
        if any(a.account_id == account_id for a in found):
            return rules.DONE, "已开户", {"account_id": account_id}
        if found:
            return rules.SKIPPED, f"房间已有在用账户 {found[0].account_id}", {"account_id": found[0].account_id}
        phone = item.values.get("phone", "")
        tenants = context.get("tenants")
        if tenants is None:
            tenants = context["tenants"] = {x.phone: x for x in dstore.tenants_of_property(t.property_id)}
        tenant = tenants.get(phone)
        if tenant is None:
            name = item.values.get("tenant_name", "")
            if not name:
                raise ValidationError("该手机号不是本物业已登记的租户，请填写租户姓名", code="tenant_name_required")
            tenant_id = rules.derived_id("t", t.task_id, item.item_id)
            try:
                tenant = directory.register_tenant(t.property_id, tenant_id, name, phone)
            except Conflict:  # registered by an earlier try of this item
                tenant = dstore.get_tenant(tenant_id)
            tenants[phone] = tenant
        try:
            directory.open_account(t.property_id, account_id, b, r, tenant.tenant_id,
                                   item.values.get("name") or item.target.label.split(" ")[-1] or r,
                                   overdraft_limit=int(t.params.get("overdraft_limit") or 0), actor=t.actor,
                                   clock=self.clock)
        except Conflict as e:
            if e.code != "already_exists":
                raise
        return rules.DONE, f"已开户（{tenant.name} {tenant.phone}）", {"account_id": account_id,
                                                                    "tenant_id": tenant.tenant_id}


# --- sheets (openpyxl) -----------------------------------------------------------------------


def read_sheet(data: bytes, op: str) -> list[dict]:
    """An uploaded .xlsx's first sheet -> rows for `create(rows=...)`."""
    from openpyxl import load_workbook

    op = rules.require_op(op)
    if not data:
        raise ValidationError("请选择要上传的 Excel 文件", code="file_required", field="file")
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        ws = wb.worksheets[0]
        rows = [tuple(r) for r in ws.iter_rows(values_only=True, max_row=rules.MAX_ITEMS + 2)]
        wb.close()
    except Exception:  # not a workbook (zip / XML errors of every kind)
        raise ValidationError("无法读取 Excel 文件，请上传 .xlsx 格式（可先下载模板）", code="sheet_invalid",
                              field="file") from None
    return rules.read_rows(rows, rules.OPERATIONS[op][1], op)


def template(op: str) -> bytes:
    """The downloadable sheet for an operation: its columns and an example row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    op = rules.require_op(op)
    kind = rules.OPERATIONS[op][1]
    cols = list(rules.TEMPLATE_COLUMNS[kind])
    if op in rules.MONEY_OPS:
        cols.append("金额（元）")
    example = {"楼栋编号": "A", "房间编号": "A0101", "表号": "", "账户编号": "", "金额（元）": "100.00",
               "手机号": "13800000000", "租户姓名": "张三", "账户名称": ""}
    wb = Workbook()
    ws = wb.active
    ws.title = rules.OPERATIONS[op][0]
    ws.append(cols)
    ws.append([example[c] for c in cols])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for i, _ in enumerate(cols, start=1):
        ws.column_dimensions[chr(64 + i)].width = 16
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


_default: Batch | None = None


def service() -> Batch:
    """The process's batch service (a warm Lambda keeps its ledger memory)."""
    global _default
    if _default is None:
        _default = Batch()
    return _default
