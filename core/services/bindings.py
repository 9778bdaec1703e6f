"""Binding codes: an admin issues a short single-use code (and its QR image) for a
tenant's account; the tenant redeems it in the mini-program, which binds their WeChat
user (openid) to the tenant record (docs/console.md, "Room actions"; the tenant-side
endpoint belongs to the mini-program's API)."""

from __future__ import annotations

from datetime import datetime

from core.domain import room_actions as rules
from core.domain.clock import Clock, utcnow
from core.domain.directory import Tenant
from core.domain.errors import NotFound
from core.domain.ledger import format_time
from core.domain.naming import require_id
from core.services import directory
from core.store import console_codes as store

INVALID = "绑定码无效或已过期，请向物业重新索取"


def issue(property_id: str, account_id: str, created_by: str, clock: Clock = utcnow) -> store.BindingCode:
    """A new code for the tenant of an open account of the property."""
    account = directory.account_in_property(property_id, account_id)
    if account.status != "OPEN":
        raise NotFound("账户不存在或已销户", code="account_not_found")
    now = clock()
    for _ in range(5):  # a clash among 8.5e11 codes is rare; draw again if it happens
        b = store.BindingCode(rules.new_binding_code(), property_id, account.tenant_id, account_id, format_time(now),
                              created_by, format_time(now + rules.BINDING_TTL))
        if store.put_binding(b, purge_at=now + rules.BINDING_TTL * 7):
            return b
    raise RuntimeError("could not draw a free binding code")


def qr_svg(code: str) -> str:
    """The code's QR image as an SVG document (qrcode, drawn here: no network)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(rules.BINDING_QR_PREFIX + code, image_factory=qrcode.image.svg.SvgPathImage, box_size=8,
                      border=2)
    return img.to_string(encoding="unicode")


def redeem_binding_code(code: object, openid: str, clock: Clock = utcnow) -> dict:
    """Bind the WeChat user `openid` to the tenant the code was issued for. Single use: a
    code used by another WeChat user, expired or unknown is refused with one message
    (nothing says which); the same user redeeming again (a retry) gets the same answer."""
    code = rules.normalize_binding_code(code)
    require_id(openid, "openid")
    now = clock()
    b = store.get_binding(code)
    if b is None:
        raise NotFound(INVALID, code="binding_code_invalid")
    fresh = b.used_by != openid  # the same user again is a retry: already bound
    if fresh and (b.used_at or b.expires_at <= format_time(now) or not store.use_binding(code, openid,
                                                                                       format_time(now))):
        raise NotFound(INVALID, code="binding_code_invalid")
    tenant: Tenant = directory.bind_openid(b.tenant_id, openid)
    return {"tenant_id": tenant.tenant_id, "property_id": b.property_id, "account_id": b.account_id,
            "name": tenant.name}


def expires_in_minutes(b: store.BindingCode, now: datetime) -> int:
    return max(0, int((datetime.fromisoformat(b.expires_at.replace("Z", "+00:00")) - now).total_seconds() // 60))
