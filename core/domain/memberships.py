"""Who may see an account from WeChat (docs/tenant-auth.md, "Bindings"). Pure.

A membership ties a WeChat user (an openid) to an account: a tenant's own WeChat user
(the tenant record's openid, bound by an admin or the demo) is a member of the tenant's
accounts; anyone who redeems a binding code an admin issued for an account becomes a
member of that account (roommates: several users on one account; one user at several
properties). A person has one openid in the mini-program and another in the official
account: each is a WeChat user of its own here, bound separately.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from core.domain.room_actions import BINDING_QR_PREFIX, normalize_binding_code

VIA_TENANT = "tenant"  # the tenant record's WeChat user (directory.bind_openid, open_account)
VIA_CODE = "code"  # a binding code redeemed by the user
NICKNAME_MAX = 32


@dataclass(frozen=True)
class Membership:
    openid: str
    account_id: str
    property_id: str
    tenant_id: str
    bound_at: str
    via: str


def binding_code_from_text(value: object) -> str:
    """A binding code as typed ("abcd-efgh") or as the console's QR reads
    ("feikong://bind?code=ABCDEFGH") -> "ABCDEFGH"; anything else a 400."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower().startswith(BINDING_QR_PREFIX.split("?", 1)[0]):  # feikong://bind...
            codes = parse_qs(urlsplit(text).query).get("code") or [""]
            value = codes[0]
    return normalize_binding_code(value)


def masked_label(openid: str) -> str:
    """A roommate's name when WeChat gave us no nickname: stable, says nothing of the openid."""
    return "微信用户 " + hashlib.sha256(openid.encode()).hexdigest()[:4].upper()


def clean_nickname(value: object) -> str | None:
    """A WeChat nickname fit to show (control characters dropped, at most 32 characters)."""
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if ch.isprintable()).strip()[:NICKNAME_MAX]
    return text or None


def display_name(openid: str, nickname: str | None) -> str:
    return clean_nickname(nickname) or masked_label(openid)


def member_id(account_id: str, openid: str) -> str:
    """The id a member carries in the API: stable per account, never the openid (an
    openid shown to a roommate would let them address that user elsewhere)."""
    return hashlib.sha256(f"{account_id}\x00{openid}".encode()).hexdigest()[:16]


def actor_id(openid: str) -> str:
    """The WeChat user as an actor of the action log: stable, not the openid."""
    return "wechat:" + hashlib.sha256(openid.encode()).hexdigest()[:12]
