"""One-time SMS codes for binding by phone and room (docs/tenant-auth.md, "Bindings"). Pure.

A WeChat user names a room and a phone number; when the room's open account has a tenant
with that number, a 6-digit code goes to the phone by SMS and, typed back within 5 minutes,
makes the user a member of the account. What is kept of a code is its HMAC-SHA256 under a
server key, over the code and everything it is good for (the phone, the account(s), the
WeChat user): never the code. One record per phone number: asking again replaces it (at
most once a minute); each check spends one of 5 attempts, a code is used once.

**Nothing tells whether the phone matched the room.** A request that matches nothing writes
a record too (a "decoy" whose code nobody is sent), so the answer, the resend cool-down,
the attempts, expiry and the burned code behave the same either way.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from core.domain.errors import ValidationError
from core.domain.limits import RateLimited

CODE_DIGITS = 6
TTL = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
KEEP_AFTER_EXPIRY = timedelta(days=1)  # then DynamoDB's TTL deletes the record
PURPOSE = "bind"
VIA_PHONE = "phone"  # a membership made by phone + room + SMS code (memberships.VIA_CODE: a binding code)

SMS_TEMPLATE_KEY = "bind_code"  # the SMS template (FEIKONG_SMS_TEMPLATES "bind_code=<id>")
SMS_TITLE = "绑定验证码"
SMS_TEXT = "您的绑定验证码为 {code}，{minutes} 分钟内有效。如非本人操作请忽略。"
SENT_MESSAGE = "若手机号与房间登记信息一致，验证码已发送"
ROOM_MAX = 64

_MAINLAND = re.compile(r"1[3-9]\d{9}")
_CODE = re.compile(rf"\d{{{CODE_DIGITS}}}")


# --- input -------------------------------------------------------------------------------


def normalize_phone(value: object) -> str:
    """A mainland mobile number as a person types it ("138 0000 0000", "+86 13800000000",
    "138-0000-0000") -> "13800000000", the form tenant records hold; else a 400."""
    text = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", value)) if isinstance(value, str) else ""
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not _MAINLAND.fullmatch(text):
        raise ValidationError("手机号格式无效，请填写 11 位中国大陆手机号", code="phone_invalid", field="phone")
    return text


def normalize_room(value: object) -> str:
    """A room as the tenant knows it ("b-201", "Ｂ－２０１", " B-201 ") -> a comparable form
    ("B-201"): full-width folded, spaces dropped, upper case; an empty or long one a 400."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).upper() if isinstance(value, str) else ""
    if not text or len(text) > ROOM_MAX:
        raise ValidationError("请填写房间号（如 B-201）", code="room_invalid", field="room")
    return text


def normalize_code(value: object) -> str:
    text = re.sub(r"\s", "", unicodedata.normalize("NFKC", value)) if isinstance(value, str) else ""
    if not _CODE.fullmatch(text):
        raise ValidationError("请输入短信中的 6 位数字验证码", code="phone_code_format", field="code")
    return text


@dataclass(frozen=True)
class RoomRef:
    """A room of a property as the directory holds it."""

    building_id: str
    room_id: str
    name: str


def find_room(rooms: list[RoomRef], wanted: str) -> RoomRef | None:
    """The one room whose id or name reads as `wanted` (normalized); None when none or more
    than one does (a name two buildings share needs the building)."""
    key = normalize_room(wanted)
    by_id = [r for r in rooms if normalize_room(r.room_id) == key]
    if len(by_id) == 1:
        return by_id[0]
    by_name = [r for r in rooms if r.name and normalize_room(r.name) == key]
    return by_name[0] if len(by_name) == 1 else None


# --- codes -------------------------------------------------------------------------------


def new_code(draw=secrets.randbelow) -> str:
    """Six random digits (leading zeros kept) from the system's CSPRNG."""
    return f"{draw(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def subject(phone: str) -> str:
    """The record's key: the purpose and a hash of the number (no phone number in the table)."""
    return f"{PURPOSE}#" + hashlib.sha256(f"{PURPOSE}|{phone}".encode()).hexdigest()[:40]


def target(account_ids: list[str] | tuple[str, ...], property_id: str, room_key: str) -> str:
    """What a code is good for: the matched accounts, or (a decoy) the room asked for."""
    return "accounts:" + ",".join(sorted(account_ids)) if account_ids else f"none:{property_id}|{room_key}"


def code_hash(key: bytes, phone: str, tgt: str, openid: str, code: str) -> str:
    """HMAC-SHA256 under the server's key: without the key, 10^6 codes could not be tried
    against a stored hash offline."""
    msg = "\x00".join((PURPOSE, phone, tgt, openid, code)).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def derive_key(secret: str) -> bytes:
    """The code key, derived from a deployment secret (one secret, separate uses)."""
    return hmac.new(secret.encode(), b"feikong phone-code key v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class CodeRecord:
    subject: str
    openid: str  # the WeChat user who asked: only they may use it
    code_hash: str
    sent_at: str  # UTC ISO 8601
    expires_at: str
    attempts: int = 0
    used_at: str = ""


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def record(subj: str, openid: str, hashed: str, now: datetime) -> CodeRecord:
    return CodeRecord(subj, openid, hashed, _iso(now), _iso(now + TTL))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def resend_wait(existing: CodeRecord | None, now: datetime) -> int:
    """Whole seconds until another code may be sent to the number (0: now)."""
    if existing is None:
        return 0
    left = (_t(existing.sent_at) + RESEND_AFTER - now).total_seconds()
    return math.ceil(left) if left > 0 else 0


def cooldown_before(now: datetime) -> str:
    """A record sent at or before this may be replaced."""
    return _iso(now - RESEND_AFTER)


class Verdict(Enum):
    OK = "ok"
    WRONG = "wrong"
    BURNED = "burned"  # this was the last attempt, or none were left
    EXPIRED = "expired"
    USED = "used"
    MISSING = "missing"  # none asked by this user for this number


def status(rec: CodeRecord | None, openid: str, now: datetime, taken: bool) -> Verdict | None:
    """What a check decides before comparing codes; None: compare (`compare`). `taken`: the
    check spent an attempt (the store adds one only while the code is this user's, unused
    and has attempts left), so `rec.attempts` counts this one."""
    if rec is None or rec.openid != openid:
        return Verdict.MISSING
    if rec.used_at:
        return Verdict.USED
    if not taken:
        return Verdict.BURNED
    if _t(rec.expires_at) <= now:
        return Verdict.EXPIRED
    return None


def compare(rec: CodeRecord, hashed: str) -> Verdict:
    if hmac.compare_digest(rec.code_hash, hashed):
        return Verdict.OK
    return Verdict.BURNED if rec.attempts >= MAX_ATTEMPTS else Verdict.WRONG


def judge(rec: CodeRecord | None, openid: str, hashed: str, now: datetime, taken: bool) -> Verdict:
    """The outcome of one check of `hashed` against `rec` (status, then compare)."""
    found = status(rec, openid, now, taken)
    return found if found is not None or rec is None else compare(rec, hashed)


def attempts_left(rec: CodeRecord) -> int:
    return max(0, MAX_ATTEMPTS - rec.attempts)


# --- refusals ----------------------------------------------------------------------------


class ResendTooSoon(RateLimited):
    """429: a code went to this number less than a minute ago."""

    code = "phone_code_too_soon"

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.message = f"验证码已发送，请 {retry_after} 秒后再重新获取"
        self.args = (self.message,)


class CodeRefused(ValidationError):
    """400: the code was not accepted; nothing changed but the attempt it spent."""


def refusal(verdict: Verdict, rec: CodeRecord | None) -> CodeRefused:
    if verdict is Verdict.WRONG and rec is not None:
        return CodeRefused(f"验证码错误，还可以再试 {attempts_left(rec)} 次", code="phone_code_wrong", field="code")
    messages = {
        Verdict.BURNED: ("phone_code_burned", "验证码错误次数过多，已失效，请重新获取"),
        Verdict.EXPIRED: ("phone_code_expired", "验证码已过期，请重新获取"),
        Verdict.USED: ("phone_code_used", "验证码已使用，请重新获取"),
        Verdict.MISSING: ("phone_code_missing", "请先获取验证码"),
        Verdict.WRONG: ("phone_code_wrong", "验证码错误"),
    }
    code, message = messages[verdict]
    return CodeRefused(message, code=code, field="code")
