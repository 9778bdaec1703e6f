"""Binding codes and memberships: an admin issues a short single-use code (and its QR
image) for a tenant's account (docs/console.md, "Room actions"); a WeChat user redeems it
in the mini-program or the official account's pages (POST /api/v1/bindings) and becomes a
member of that account, next to any roommates (docs/tenant-auth.md, "Bindings")."""

from __future__ import annotations

from datetime import datetime

from core.domain import memberships as membership_rules
from core.domain import room_actions as rules
from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.errors import NotFound
from core.domain.ledger import format_time
from core.domain.memberships import Membership
from core.domain.naming import require_id
from core.services import action_log, directory, tenancy
from core.store import console_codes as store
from core.store import directory as dstore
from core.store import memberships as mstore

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


def redeem_binding_code(code: object, openid: str, clock: Clock = utcnow, property_id: str | None = None) -> dict:
    """Make the WeChat user `openid` a member of the account the code was issued for (a
    roommate, or the tenant themselves). `code`: as typed ("abcd-efgh") or the QR's text
    (BINDING_QR_PREFIX + code). Single use: a code used by another WeChat user, expired,
    unknown, of a closed account or (with `property_id`, the property the page or
    mini-program serves) of another property is refused with one message (nothing says
    which); the same user redeeming again while the code is valid (a retry) gets the same
    answer. Audited
    (`tenant_bound` in the property's action log)."""
    code = membership_rules.binding_code_from_text(code)
    require_id(openid, "openid")
    now = clock()
    b = store.get_binding(code)
    if b is None or (property_id is not None and b.property_id != property_id):
        raise NotFound(INVALID, code="binding_code_invalid")
    account = dstore.get_account(b.account_id)
    if account is None or account.status != "OPEN":
        raise NotFound(INVALID, code="binding_code_invalid")
    if b.expires_at <= format_time(now):
        raise NotFound(INVALID, code="binding_code_invalid")
    fresh = b.used_by != openid  # the same user again, while the code is valid, is a retry
    if fresh and (b.used_at or not store.use_binding(code, openid, format_time(now))):
        raise NotFound(INVALID, code="binding_code_invalid")
    return join(openid, account, now, membership_rules.VIA_CODE, {"code": rules.show_binding_code(code)})


def join(openid: str, account, now: datetime, via: str, detail: dict) -> dict:
    """Make `openid` a member of `account` (kept if it is one already) and answer the
    binding as the API shows it. Audited once (`tenant_bound`, after = via and `detail`):
    the binding-code path and the phone path (core/services/phone_binding.py) both end here."""
    m = Membership(openid, account.account_id, account.property_id, account.tenant_id, format_time(now), via)
    if mstore.add(m):
        _audit("tenant_bound", openid, account, now, after={"via": m.via, **detail})
    prop, _, _, room = dstore.room_context(account.property_id, account.building_id, account.room_id)
    return {"account_id": account.account_id, "property_id": account.property_id,
            "property_name": prop.name if prop else "", "room_name": room.name if room else account.room_id,
            "name": account.name}


def unbind(openid: str, account_id: object, clock: Clock = utcnow) -> None:
    """The WeChat user leaves an account (their own membership only; a roommate's stays).
    NotFound if they are not a member. Audited (`tenant_unbound`)."""
    m = tenancy.membership(openid, account_id)
    account = dstore.get_account(m.account_id)
    if mstore.remove(openid, m.account_id) and account is not None:
        _audit("tenant_unbound", openid, account, clock(), before={"via": m.via, "bound_at": m.bound_at})


def members(openid: str, account_id: object) -> list[dict]:
    """The WeChat users of an account the caller is a member of (roommates), first bound
    first: {member_id, display_name (WeChat nickname, else a masked label), is_me,
    bound_at}. One GetItem (the caller's membership), one index Query, one BatchGet."""
    mine = tenancy.membership(openid, account_id)
    found = {m.openid: m for m in mstore.of_account(mine.account_id)}
    found[openid] = mine  # the index may lag a moment behind the caller's own binding
    names = mstore.nicknames(found)
    out = [{"member_id": membership_rules.member_id(mine.account_id, o),
            "display_name": membership_rules.display_name(o, names.get(o)), "is_me": o == openid,
            "bound_at": m.bound_at} for o, m in found.items()]
    return sorted(out, key=lambda r: (r["bound_at"], r["member_id"]))


def _audit(action: str, openid: str, account, now: datetime, before: dict | None = None,
           after: dict | None = None) -> None:
    """The tenant's own binding or unbinding in the property's action log, where the
    console's audit page shows it: the actor is the WeChat user (nickname or masked label;
    never the openid)."""
    names = mstore.nicknames([openid])
    actor = AdminPrincipal(admin_id=membership_rules.actor_id(openid),
                           name=membership_rules.display_name(openid, names.get(openid)),
                           company_id="", role="tenant", property_ids=(account.property_id,))
    action_log.record(actor, action, property_id=account.property_id, target=f"account:{account.account_id}",
                      before=before, after=after, at=now)


def expires_in_minutes(b: store.BindingCode, now: datetime) -> int:
    return max(0, int((datetime.fromisoformat(b.expires_at.replace("Z", "+00:00")) - now).total_seconds() // 60))
