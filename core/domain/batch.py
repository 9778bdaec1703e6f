"""Batch operations (批量操作, docs/batch.md): the rules of a task over many rooms, meters or
accounts. Pure: no I/O.

A task is an operation, its parameters (checked here), and items: one per target (a
meter, an account or a room), each with optional per-row values from an uploaded sheet
(e.g. its own recharge amount). Items go pending -> running -> done | failed | skipped,
or pending -> cancelled. Money items post under an entry id derived from (task, item),
so a redelivered or retried item never moves money twice.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from core.domain.errors import ValidationError

VERSION = 1
MAX_ITEMS = 5_000  # items in one task
ITEMS_PER_MESSAGE = 25  # items one queue message carries (5,000 items: 200 messages, 20 SendMessageBatch)
PAGE = 100  # items per page of the task's detail and dry run
MAX_SCHEDULE_AHEAD = timedelta(days=90)

# what a task targets
METER, ACCOUNT, ROOM = "meter", "account", "room"

# operation -> (label, target kind, permission: docs/console.md roles)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "tariff": ("分配电价方案", METER, "operate"),
    "trip": ("批量分闸", METER, "operate"),
    "close": ("批量合闸", METER, "operate"),
    "settings": ("告警金额与保电设置", ACCOUNT, "operate"),
    "recharge": ("批量充值", ACCOUNT, "money"),
    "deduct": ("批量扣款", ACCOUNT, "money"),
    "open_account": ("批量开户", ROOM, "operate"),
}
MONEY_OPS = ("recharge", "deduct")

# item states
PENDING, RUNNING, DONE, FAILED, SKIPPED, CANCELLED = "pending", "running", "done", "failed", "skipped", "cancelled"
ITEM_STATES = (PENDING, RUNNING, DONE, FAILED, SKIPPED, CANCELLED)
FINAL_STATES = (DONE, FAILED, SKIPPED, CANCELLED)
ITEM_STATE_NAMES = {PENDING: "等待执行", RUNNING: "执行中", DONE: "成功", FAILED: "失败", SKIPPED: "跳过",
                    CANCELLED: "已取消"}

# task states: draft (made, dry run shown, not confirmed) -> scheduled | running -> finished; cancelled
DRAFT, SCHEDULED, TASK_RUNNING, FINISHED, TASK_CANCELLED = "draft", "scheduled", "running", "finished", "cancelled"
TASK_STATE_NAMES = {DRAFT: "待确认", SCHEDULED: "已排期", TASK_RUNNING: "执行中", FINISHED: "已完成",
                    TASK_CANCELLED: "已取消"}

# sheet columns (the downloadable template's header row): header -> field
COLUMNS = {"楼栋编号": "building_id", "房间编号": "room_id", "表号": "meter_id", "账户编号": "account_id",
           "金额（元）": "amount", "手机号": "phone", "租户姓名": "tenant_name", "账户名称": "name"}
TEMPLATE_COLUMNS = {
    METER: ("楼栋编号", "房间编号", "表号"),
    ACCOUNT: ("楼栋编号", "房间编号", "账户编号"),
    ROOM: ("楼栋编号", "房间编号", "手机号", "租户姓名", "账户名称"),
}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")


@dataclass(frozen=True)
class Target:
    """What one item acts on. `label`: how a person names it (楼栋/房间 or the meter)."""

    kind: str
    building_id: str = ""
    room_id: str = ""
    account_id: str = ""
    meter_id: str = ""
    label: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_dict(cls, d: dict) -> Target:
        return cls(**{k: str(d.get(k) or "") for k in ("kind", "building_id", "room_id", "account_id", "meter_id",
                                                       "label")})


@dataclass(frozen=True)
class Item:
    task_id: str
    item_id: str  # 00001 ...
    target: Target
    values: dict = field(default_factory=dict)  # per-row values (amount in fen, phone, tenant_name, name)
    state: str = PENDING
    reason: str = ""  # Chinese: why it failed or was skipped, or what was done
    result: dict = field(default_factory=dict)  # before / after / command_id / entry_id
    attempt: int = 1
    updated_at: str = ""


@dataclass(frozen=True)
class Task:
    task_id: str
    property_id: str
    op: str
    params: dict
    state: str
    total: int
    created_at: str
    created_by: str  # admin id
    created_by_name: str
    run_at: str = ""  # scheduled: when it starts (UTC ISO)
    attempt: int = 1  # 1, then one more per retry of the failed items
    started_at: str = ""
    finished_at: str = ""
    schedule_name: str = ""
    title: str = ""

    @property
    def label(self) -> str:
        return OPERATIONS[self.op][0]

    @property
    def target_kind(self) -> str:
        return OPERATIONS[self.op][1]

    @property
    def permission(self) -> str:
        return OPERATIONS[self.op][2]

    @property
    def actor(self) -> str:
        return f"admin:{self.created_by}"


def item_id(n: int) -> str:
    return f"{n:05d}"


def entry_id(task_id: str, item: str) -> str:
    """The ledger entry of a money item: derived from (task, item), so it posts once."""
    return f"batch:{task_id}:{item}"


def derived_id(prefix: str, task_id: str, item: str) -> str:
    """A record id made for an item (an account or tenant it opens): the same on every try."""
    return f"{prefix}-{hashlib.sha256(f'{task_id}:{item}'.encode()).hexdigest()[:16]}"


def require_op(op: object) -> str:
    if not isinstance(op, str) or op not in OPERATIONS:
        raise ValidationError("请选择批量操作类型", code="batch_op_invalid", field="op")
    return op


def parse_yuan(value: object, what: str = "金额", allow_zero: bool = False) -> int:
    """Yuan ("12.5", 12.5 from a sheet cell) -> fen; at most 2 decimals, 0 < x <= 100,000."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"请填写{what}", code="amount_required", field="amount")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"{what}必须是数字（元）", code="amount_invalid", field="amount") from None
    if not d.is_finite():
        raise ValidationError(f"{what}必须是数字（元）", code="amount_invalid", field="amount")
    if abs(d) > 10_000_000 or d != d.quantize(Decimal("0.01")):
        raise ValidationError(f"{what}最多两位小数，且不超过 100000 元", code="amount_invalid", field="amount")
    fen = int(d * 100)
    if fen < 0 or (fen == 0 and not allow_zero) or fen > 10_000_000:
        raise ValidationError(f"{what}必须大于 0 且不超过 100000 元", code="amount_invalid", field="amount")
    return fen


def _fen(value: object, what: str) -> int:
    """A fen amount given in JSON (int) or yuan text (a form)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value <= 10_000_000:
            raise ValidationError(f"{what}必须大于 0 且不超过 100000 元", code="amount_invalid", field="amount")
        return value
    return parse_yuan(value, what)


def require_reason(value: object) -> str:
    reason = value.strip() if isinstance(value, str) else ""
    if not reason:
        raise ValidationError("请填写操作原因", code="reason_required", field="reason")
    if len(reason) > 100:
        raise ValidationError("操作原因不能超过 100 个字", code="reason_too_long", field="reason")
    return reason


def check_params(op: str, params: object, per_row_amounts: bool = False) -> dict:
    """An operation's parameters, checked and normalised (fen integers). `per_row_amounts`:
    money items take their amounts from the sheet's rows, so none is needed here."""
    p = params if isinstance(params, dict) else {}
    if op == "tariff":
        plan = p.get("plan_id")
        if not isinstance(plan, str) or not _ID.fullmatch(plan.strip()):
            raise ValidationError("请选择电价方案", code="plan_required", field="plan_id")
        return {"plan_id": plan.strip()}
    if op in ("trip", "close"):
        return {"reason": require_reason(p.get("reason"))}
    if op == "settings":
        out: dict = {}
        levels = p.get("alarm_levels")
        if levels not in (None, "", []):
            if isinstance(levels, str):
                levels = [x for x in re.split(r"[,，\s]+", levels.strip()) if x]
                levels = [parse_yuan(x, "告警金额", allow_zero=True) for x in levels]
            if not isinstance(levels, list) or not 1 <= len(levels) <= 3 or \
                    any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in levels):
                raise ValidationError("告警金额为 1 到 3 个金额（元），用逗号分隔", code="alarm_levels_invalid",
                                      field="alarm_levels")
            if levels != sorted(levels, reverse=True) or len(set(levels)) != len(levels):
                raise ValidationError("告警金额须从高到低排列且不重复", code="alarm_levels_invalid", field="alarm_levels")
            out["alarm_levels"] = levels
        overdraft = p.get("overdraft_limit")
        if overdraft not in (None, ""):
            out["overdraft_limit"] = overdraft if isinstance(overdraft, int) and not isinstance(overdraft, bool) \
                and 0 <= overdraft <= 10_000_000 else parse_yuan(overdraft, "透支额度", allow_zero=True)
        keep = p.get("keep_supply")
        if keep not in (None, ""):
            if keep in ("on", "true", "1", True):
                out["keep_supply"] = True
            elif keep in ("off", "false", "0", False):
                out["keep_supply"] = False
            else:
                raise ValidationError("保电须为开启或关闭", code="keep_supply_invalid", field="keep_supply")
        if not out:
            raise ValidationError("请至少填写一项要修改的设置", code="nothing_to_change", field="alarm_levels")
        return out
    if op in MONEY_OPS:
        memo = p.get("memo") if isinstance(p.get("memo"), str) else ""
        if len(memo.strip()) > 50:
            raise ValidationError("备注不能超过 50 个字", code="memo_too_long", field="memo")
        out = {"memo": memo.strip()}
        amount = p.get("amount")
        if amount in (None, "") and per_row_amounts:
            return out
        out["amount"] = _fen(amount, "金额")
        return out
    if op == "open_account":
        overdraft = p.get("overdraft_limit")
        out = {"overdraft_limit": 0}
        if overdraft not in (None, ""):
            out["overdraft_limit"] = overdraft if isinstance(overdraft, int) and not isinstance(overdraft, bool) \
                and 0 <= overdraft <= 10_000_000 else parse_yuan(overdraft, "透支额度", allow_zero=True)
        return out
    raise ValidationError("请选择批量操作类型", code="batch_op_invalid", field="op")


def item_amount(task: Task, item: Item) -> int:
    """A money item's amount: its row's, else the task's."""
    return int(item.values.get("amount") or task.params.get("amount") or 0)


def parse_run_at(value: object, now: datetime) -> datetime | None:
    """A scheduled start ("2026-12-01T08:00" local Asia/Shanghai, or ISO with an offset): in
    the future and within 90 days; empty: run now."""
    if value in (None, ""):
        return None
    from zoneinfo import ZoneInfo

    try:
        at = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError("执行时间格式不正确", code="run_at_invalid", field="run_at") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    if at <= now:
        raise ValidationError("定时执行的时间必须晚于现在", code="run_at_past", field="run_at")
    if at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationError("定时执行的时间不能超过 90 天以后", code="run_at_too_far", field="run_at")
    return at


def read_rows(rows: list[tuple], target_kind: str, op: str) -> list[dict]:
    """A sheet's rows (the first is the header, 中文 column names of COLUMNS) -> one dict per
    non-empty row with the fields it names; amounts in fen. A row that cannot be read keeps
    its problem under "problem" (it becomes a failed item with that reason)."""
    if not rows:
        raise ValidationError("表格是空的", code="sheet_empty", field="file")
    header = [str(c).strip() if c is not None else "" for c in rows[0]]
    fields = {i: COLUMNS[h] for i, h in enumerate(header) if h in COLUMNS}
    wanted = {"meter_id"} if target_kind == METER else {"account_id"} if target_kind == ACCOUNT else set()
    has = set(fields.values())
    if not ({"building_id", "room_id"} <= has or wanted & has):
        need = "、".join(TEMPLATE_COLUMNS[target_kind])
        raise ValidationError(f"表格第一行须是列名（{need}），请使用下载的模板", code="sheet_header_invalid",
                              field="file")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        cells = {f: row[i] for i, f in fields.items() if i < len(row)}
        if all(v is None or str(v).strip() == "" for v in cells.values()):
            continue
        d: dict = {"row": n}
        for f, v in cells.items():
            if v is None or str(v).strip() == "":
                continue
            if f == "amount":
                try:
                    d["amount"] = parse_yuan(v)
                except ValidationError as e:
                    d["problem"] = f"第 {n} 行：{e.message}"
                continue
            text = str(v).strip()
            if isinstance(v, float) and v.is_integer():  # a number cell: 101.0 -> "101"
                text = str(int(v))
            d[f] = text
        for f in ("building_id", "room_id", "meter_id", "account_id"):
            if f in d and not _ID.fullmatch(d[f]):
                d.setdefault("problem", f"第 {n} 行：编号“{d[f][:20]}”格式不正确")
        if op in MONEY_OPS and "amount" not in d and "problem" not in d:
            d["problem"] = f"第 {n} 行：请填写金额（元）"
        out.append(d)
        if len(out) > MAX_ITEMS:
            raise ValidationError(f"一次最多 {MAX_ITEMS} 行", code="too_many_items", field="file")
    if not out:
        raise ValidationError("表格中没有数据行", code="sheet_empty", field="file")
    return out


# --- messages -------------------------------------------------------------------------------


def message(task_id: str, attempt: int, item_ids: list[str]) -> str:
    return json.dumps({"v": VERSION, "task_id": task_id, "attempt": attempt, "items": item_ids},
                      separators=(",", ":"))


def messages(task_id: str, attempt: int, item_ids: list[str], per_message: int = ITEMS_PER_MESSAGE) -> list[str]:
    return [message(task_id, attempt, item_ids[i:i + per_message]) for i in range(0, len(item_ids), per_message)]


@dataclass(frozen=True)
class Message:
    task_id: str
    attempt: int
    items: tuple[str, ...]


def parse_message(body: object) -> Message:
    try:
        d = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        d = None
    if not isinstance(d, dict) or d.get("v") != VERSION or not isinstance(d.get("task_id"), str) \
            or not _ID.fullmatch(d["task_id"]) or not isinstance(d.get("attempt"), int) \
            or not isinstance(d.get("items"), list) or not d["items"] \
            or not all(isinstance(i, str) and re.fullmatch(r"\d{5}", i) for i in d["items"]):
        raise ValidationError("not a batch message", code="batch_message_invalid")
    return Message(d["task_id"], d["attempt"], tuple(d["items"]))


# --- progress -------------------------------------------------------------------------------


def counts(states: list[str]) -> dict[str, int]:
    out = {s: 0 for s in ITEM_STATES}
    for s in states:
        out[s] = out.get(s, 0) + 1
    return out


def settled(c: dict[str, int]) -> bool:
    """No item is waiting or running."""
    return c.get(PENDING, 0) == 0 and c.get(RUNNING, 0) == 0


def percent(c: dict[str, int]) -> int:
    total = sum(c.values())
    return 100 if total == 0 else int(100 * sum(c.get(s, 0) for s in FINAL_STATES) / total)


# --- dry run: what an item would change ------------------------------------------------------


def yuan_text(fen: int | None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def levels_text(levels) -> str:
    return " / ".join(yuan_text(int(x)) for x in levels) if levels else "默认（50.00 / 20.00 / 0.00）"


RELAY_NAMES = {"open": "分闸", "closed": "合闸", "unknown": "未知"}


def change(op: str, params: dict, item_values: dict, before: dict) -> tuple[str, str, str]:
    """(before, after, note) an admin reads for one item; `before` holds the target's
    current state (balance, plan_id, relay, manual_open, alarm_levels, overdraft_limit,
    keep_supply, open_account); a note says why nothing would change."""
    if op == "tariff":
        was = before.get("plan_id") or "未设置"
        return was, params["plan_id"], "方案未变化" if was == params["plan_id"] else ""
    if op in ("trip", "close"):
        was = RELAY_NAMES.get(str(before.get("relay") or "unknown"), "未知")
        target = "分闸" if op == "trip" else "合闸"
        held = bool(before.get("manual_open"))
        note = "已是目标状态" if (op == "trip") == held and was == target else ""
        return was + ("（手动分闸保持）" if held else ""), target + ("（手动保持）" if op == "trip" else ""), note
    if op == "settings":
        parts_b, parts_a = [], []
        if "alarm_levels" in params:
            parts_b.append("告警 " + levels_text(before.get("alarm_levels")))
            parts_a.append("告警 " + levels_text(params["alarm_levels"]))
        if "overdraft_limit" in params:
            parts_b.append("透支 " + yuan_text(before.get("overdraft_limit")))
            parts_a.append("透支 " + yuan_text(params["overdraft_limit"]))
        if "keep_supply" in params:
            parts_b.append("保电 " + ("开" if before.get("keep_supply") else "关"))
            parts_a.append("保电 " + ("开" if params["keep_supply"] else "关"))
        b, a = "；".join(parts_b), "；".join(parts_a)
        return b, a, "设置未变化" if b == a else ""
    if op in MONEY_OPS:
        amount = int(item_values.get("amount") or params.get("amount") or 0)
        balance = before.get("balance")
        if balance is None:
            return "—", "—", ""
        after = balance + amount if op == "recharge" else balance - amount
        return f"余额 {yuan_text(balance)}", f"余额 {yuan_text(after)}", ""
    if op == "open_account":
        if before.get("open_account"):
            return f"在用账户 {before['open_account']}", "不变", "房间已有在用账户"
        who = item_values.get("tenant_name") or item_values.get("phone") or ""
        return "空房", f"开户：{who} {item_values.get('phone', '')}".strip(), ""
    return "", "", ""
