"""What a tenant reads about their accounts (the tenant API's reads, docs/tenant-api.md):
supply in words with its reason, the alarm level, the restore line, a meter's relay in
words, a ledger entry's kind and cause in words, an order's status and payer, and the
signed paging cursors. Pure: core/services/tenant_reads.py reads the store and hands the
values over. Words are Simplified Chinese (a tenant reads them); the console's own words
for the same facts are in core/domain/room_detail.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass

from core.domain.control import CUT_DONE, CUT_PENDING, DEFAULT_LEVELS
from core.domain.errors import ValidationError
from core.domain.ledger import EntryKind
from core.domain.memberships import display_name
from core.domain.money import yuan
from core.domain.payments import CLOSED, PAID, PENDING
from core.domain.room_detail import KIND_NAMES, entry_cause_text, local_time

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
CURSOR_MAX_CHARS = 600

SUPPLY_ON, SUPPLY_PENDING, SUPPLY_CUT = "on", "pending", "cut"
RELAY_TEXT = {"closed": "合闸（供电中）", "open": "分闸（已断开）", "unknown": "未知（尚未回读）"}
ORDER_STATUS_TEXT = {PENDING: "待支付", PAID: "已支付", CLOSED: "已关闭"}
CHANNEL_PAYER = {"cash": "物业柜台（现金）", "bank": "物业柜台（银行转账）"}
ELECTRICITY, WATER = "electricity", "water"
METER_NAMES = {"electric_1p": "单相电表", "electric_3p": "三相电表", "water": "水表"}


@dataclass(frozen=True)
class Supply:
    state: str  # on | pending | cut
    text: str
    reason: str


def restore_line(restore_line_fen: int, overdraft_limit: int) -> int:
    """The balance above which a cut supply comes back: the account's restore line, never
    below its cut-off line (0 minus the allowed overdraft)."""
    return max(restore_line_fen, -overdraft_limit)


def supply(cut_state: str, cut_due_at: str, balance: int, overdraft_limit: int, restore_line_fen: int,
           keep_supply: bool, tz: str = "Asia/Shanghai", *, postpaid: bool = False) -> Supply:
    """The account's supply as its tenant reads it: on, pending (a cut is due: when) or cut
    (and what brings it back). A post-paid (后付费) account is never cut for money."""
    line = -overdraft_limit
    line_text = f"断电线 {yuan(line)} 元" + (f"（可透支 {yuan(overdraft_limit)} 元）" if overdraft_limit else "")
    if cut_state == CUT_DONE:
        back = restore_line(restore_line_fen, overdraft_limit)
        why = f"余额 {yuan(balance)} 元低于{line_text}" if balance < line else f"余额 {yuan(balance)} 元"
        return Supply(SUPPLY_CUT, "已停止供电", f"{why}；余额高于 {yuan(back)} 元后自动恢复供电，请充值")
    if cut_state == CUT_PENDING:
        when = f"预计 {local_time(cut_due_at, tz)} 停止供电" if cut_due_at else "保护时段结束后停止供电"
        return Supply(SUPPLY_PENDING, "即将停止供电",
                      f"余额 {yuan(balance)} 元低于{line_text}；宽限期或保护时段内暂不断电，{when}，请尽快充值")
    if postpaid:
        return Supply(SUPPLY_ON, "正常供电", "后付费：按期出账单，请按时缴纳账单；欠费不会停止供电")
    if keep_supply:
        return Supply(SUPPLY_ON, "正常供电", "本账户为保电账户：余额不足也不会停止供电，请按时充值")
    if balance < line:
        return Supply(SUPPLY_ON, "正常供电", f"余额 {yuan(balance)} 元低于{line_text}，请尽快充值以免停止供电")
    return Supply(SUPPLY_ON, "正常供电", f"余额 {yuan(balance)} 元，高于{line_text}")


def alarm_level(balance: int, levels: Iterable[int] | None) -> int:
    """0: no alarm; n: the balance is below the n-th (descending) alarm amount."""
    amounts = tuple(levels) if levels else DEFAULT_LEVELS
    return sum(1 for a in amounts if balance < a)


def relay_text(state: str) -> str:
    return RELAY_TEXT.get(state, RELAY_TEXT["unknown"])


def meter_kind(kind: str) -> str:
    """electricity | water (the API's kinds) of a meter's kind."""
    return WATER if kind == "water" else ELECTRICITY


def meter_name(kind: str, meter_id: str) -> str:
    return f"{METER_NAMES.get(kind, '表计')} {meter_id}"


# --- the statement ---------------------------------------------------------------------------


def kind_text(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)


def cause_text(kind: str, entry_id: str, cause: str, memo: str = "") -> str:
    """Why the entry is there, in words (the same words the console shows)."""
    return entry_cause_text(kind, entry_id, cause, memo)


def order_of_entry(kind: str, cause: str) -> str | None:
    """The recharge order (out_trade_no) a WeChat recharge or refund entry came from."""
    if kind in (EntryKind.RECHARGE, EntryKind.REFUND) and cause.startswith("order:"):
        return cause.partition(":")[2] or None
    return None


def entry_payer(kind: str, entry_id: str, cause: str) -> str | None:
    """Who or what paid a credit, in words (None for a debit): WeChat Pay (the order,
    GET /orders/<no>, names the roommate), the property's counter."""
    if kind != EntryKind.RECHARGE:
        return None
    if cause.startswith("order:"):
        return "微信支付"
    prefix = entry_id.partition(":")[0]
    return CHANNEL_PAYER.get(prefix, "物业")


def order_status_text(status: str) -> str:
    return ORDER_STATUS_TEXT.get(status, status)


def order_payer(openid: str, channel: str, me: str, nickname: str | None) -> tuple[str, bool]:
    """(display name, is_me) of who paid an order: a WeChat user (their nickname, or a
    stable masked label), or the property's counter."""
    if channel in CHANNEL_PAYER or not openid:
        return CHANNEL_PAYER.get(channel, "物业"), False
    return display_name(openid, nickname), openid == me


# --- cursors -----------------------------------------------------------------------------------


def page_size(value: int | None) -> int:
    if value is None:
        return PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise ValidationError(f"每页条数应为 1 到 {MAX_PAGE_SIZE}", code="limit_invalid", field="limit")
    return value


def _mac(key: bytes, scope: str, payload: bytes) -> bytes:
    return hmac.new(key, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()[:16]


def encode_cursor(key: bytes, scope: str, position: list[str]) -> str:
    """An opaque cursor: the position (the last item's sort values) in a page of `scope`
    (e.g. "statement:<account_id>"), signed so a client can neither forge nor alter it,
    nor carry it to another list."""
    payload = json.dumps(position, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(_mac(key, scope, payload) + payload).decode().rstrip("=")


def decode_cursor(key: bytes, scope: str, cursor: str | None, size: int) -> list[str] | None:
    """The position a cursor of encode_cursor(key, scope, ...) carries (`size` strings);
    None for no cursor; a 400 `cursor_invalid` for anything else."""
    if not cursor:
        return None
    bad = ValidationError("分页参数无效，请从第一页重新查看", code="cursor_invalid", field="cursor")
    if len(cursor) > CURSOR_MAX_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    mac, payload = raw[:16], raw[16:]
    if len(mac) < 16 or not hmac.compare_digest(mac, _mac(key, scope, payload)):
        raise bad
    try:
        position = json.loads(payload)
    except ValueError:
        raise bad from None
    if not isinstance(position, list) or len(position) != size or not all(isinstance(p, str) and p for p in position):
        raise bad
    return position


def cursor_key(secret: str) -> bytes:
    """The cursors' signing key, derived from a server secret (never the secret itself)."""
    return hashlib.sha256(b"feikong tenant api cursor\x00" + secret.encode()).digest()
