"""The delivery log where people look (docs/console.md "Notification log"): an account's
recent deliveries for the room detail, a property's log filtered and paged for the console
and the admin API, and a WeChat user's own deliveries for the tenant API. Reads engineer
N1's `deliveries` table (core/store/deliveries.py); recipients are stored masked."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from core.domain import notifications as n
from core.domain.errors import NotFound, ValidationError
from core.domain.naming import require_id
from core.domain.room_detail import local_time
from core.services import tenancy
from core.store import deliveries as store
from core.store import directory as dstore

PAGE_MAX = 100


@dataclass(frozen=True)
class DeliveryRow:
    delivery: n.Delivery
    at: str  # local time of the first attempt
    kind_name: str
    channel_name: str
    status_name: str
    audience: str  # tenant | admin

    def to_json(self) -> dict:
        d = self.delivery
        return {"delivery_id": d.delivery_id, "account_id": d.account_id or None, "kind": d.kind,
                "kind_name": self.kind_name, "channel": d.channel, "channel_name": self.channel_name,
                "recipient": d.recipient, "status": d.status, "status_name": self.status_name,
                "attempts": d.attempts, "detail": d.detail, "created_at": d.created_at,
                "updated_at": d.updated_at or None, "audience": self.audience}


def row(d: n.Delivery, tz: str = "Asia/Shanghai") -> DeliveryRow:
    kind = n.KINDS.get(d.kind)
    return DeliveryRow(d, local_time(d.created_at, tz) if d.created_at else "", kind.title if kind else d.kind,
                       n.CHANNEL_NAMES.get(d.channel, d.channel), n.STATUS_NAMES.get(d.status, d.status),
                       kind.audience if kind else "")


def account_log(account_id: str, limit: int = 20, property_id: str = "") -> list[DeliveryRow]:
    """An account's most recent deliveries (its tenants' and its admins' about it), newest
    first. With property_id: 404 unless the account is the property's."""
    aid = require_id(account_id, "account_id")
    if property_id:
        a = dstore.get_account(aid)
        if a is None or a.property_id != property_id:
            raise NotFound("账户不存在", code="account_not_found")
    return [row(d) for d in store.of_account(aid, limit)]


def encode_cursor(keys: dict | None) -> str | None:
    if keys is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(keys, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        keys = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        keys = None
    if not isinstance(keys, dict) or set(keys) != set(store.PAGE_KEYS) \
            or not all(isinstance(v, str) for v in keys.values()):
        raise ValidationError("分页游标无效", code="cursor_invalid", field="cursor")
    return keys


def page_size(value: object, default: int = 50) -> int:
    if value in (None, ""):
        return default
    try:
        size = int(str(value))
    except ValueError:
        size = 0
    if not 1 <= size <= PAGE_MAX:
        raise ValidationError(f"每页条数应为 1 到 {PAGE_MAX}", code="limit_invalid", field="limit")
    return size


def property_log(property_id: str, *, status: str = "", kind: str = "", cursor: str | None = None,
                 limit: int = 50) -> tuple[list[DeliveryRow], str | None]:
    """A property's deliveries newest first, by status and / or kind; (rows, next cursor)."""
    if status and status not in n.STATUS_NAMES:
        raise ValidationError("未知的发送状态", code="status_invalid", field="status")
    if kind and kind not in n.KINDS:
        raise ValidationError("未知的通知类型", code="kind_invalid", field="kind")
    found, nxt = store.page_of_property(require_id(property_id, "property_id"), status=status, kind=kind,
                                        limit=limit, after=decode_cursor(cursor))
    return [row(d) for d in found], encode_cursor(nxt)


def tenant_log(openid: str, account_id: object, limit: int = 20) -> list[DeliveryRow]:
    """The caller's own deliveries about an account they are bound to (404 otherwise):
    tenant messages whose recipient is this WeChat user (the log keeps recipients masked,
    so a WeChat message is matched by the masked openid). Newest first."""
    aid = tenancy.require_member(openid, account_id)
    mine = {(c, n.mask(c, openid)) for c in (n.SUBSCRIBE, n.TEMPLATE)}
    out = []
    for d in store.of_account(aid, 200):
        kind = n.KINDS.get(d.kind)
        if kind is not None and kind.audience == n.TENANT and (d.channel, d.recipient) in mine:
            out.append(row(d))
            if len(out) >= limit:
                break
    return out
