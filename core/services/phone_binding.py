"""Binding by phone + room with a one-time SMS code (docs/tenant-auth.md "Bindings").

1. `request_code`: the WeChat user names a property, a room (its id or its name as the
   tenant knows it, "B-201") and a phone number. If an open account of that room has a
   tenant with that number, a 6-digit code goes to the number by SMS through the channel
   port (core/integrations/channels.py, the sender notifySend uses). Whether it matched or
   not, a code record is written (a decoy when nothing matched) and the answer is the same.
2. `bind`: the code typed back makes the user a member of the account(s), exactly as a
   binding code does (`bindings.join`: the same membership write and `tenant_bound` audit).

Rules (code, hash, cool-down, attempts, expiry) are in core/domain/phone_codes.py; the
records in core/store/otp_codes.py. Limits: per phone, per WeChat user and per client
address (core/services/limits.py counters), and one code per number a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from core.domain import phone_codes as rules
from core.domain.clock import Clock, utcnow
from core.domain.directory import Account
from core.domain.ledger import format_time
from core.domain.limits import Rule
from core.domain.naming import require_id
from core.domain.notifications import e164, mask
from core.services import bindings
from core.services.limits import Limiter, client_ip
from core.settings import get_settings
from core.store import directory as dstore
from core.store import otp_codes as store


def otp_rules() -> tuple[Rule, Rule, Rule]:
    s = get_settings()
    w = s.otp_limit_window_seconds
    return (Rule("otp_openid", s.otp_limit_per_openid, w), Rule("otp_ip", s.otp_limit_per_ip, w),
            Rule("otp_phone", s.otp_limit_per_phone, w))


def _key() -> bytes:
    """The codes' HMAC key, derived from the tenant tokens' secret (`jwt`, Secrets Manager)."""
    from core.integrations import secrets

    return rules.derive_key(secrets.named("jwt"))


def _send_sms(phone: str, code: str):
    from core.integrations import channels

    minutes = str(int(rules.TTL.total_seconds() // 60))
    return channels.send(channels.Outbound(
        delivery_id=f"otp-{uuid.uuid4().hex}", channel="sms", to=e164(phone), template_key=rules.SMS_TEMPLATE_KEY,
        title=rules.SMS_TITLE, body=rules.SMS_TEXT.format(code=code, minutes=minutes),
        fields={"code": code, "minutes": minutes}))


def _log():
    from aws_lambda_powertools import Logger

    return Logger(service="feikong", child=True)


class PhoneBinding:
    def __init__(self, clock: Clock = utcnow, send: Callable[[str, str], object] | None = None,
                 limiter: Limiter | None = None, key: Callable[[], bytes] = _key) -> None:
        self.clock = clock
        self.send = send or _send_sms
        self.limiter = limiter or Limiter(clock)
        self.key = key

    # --- the room's accounts whose tenant has this number --------------------------------

    def matches(self, property_id: str, building_id: str | None, room: str, phone: str) -> list[Account]:
        """Open accounts of the named room whose tenant's phone is `phone` (none when the
        room is unknown or ambiguous). Reads: the property's buildings (unless named), the
        rooms of each, the room's accounts and their tenants."""
        buildings = [building_id] if building_id else [b.building_id for b in dstore.buildings(property_id)]
        refs = [rules.RoomRef(r.building_id, r.room_id, r.name) for b in buildings
                for r in dstore.rooms(property_id, b)]
        ref = rules.find_room(refs, room)
        if ref is None:
            return []
        accounts = [a for a in dstore.accounts(dstore.room_account_ids(property_id, ref.building_id, ref.room_id))
                    if a.status == "OPEN" and a.property_id == property_id]
        phones: dict[str, str] = {}
        out = []
        for a in accounts:
            if a.tenant_id not in phones:
                t = dstore.get_tenant(a.tenant_id)
                phones[a.tenant_id] = _same_form(t.phone) if t else ""
            if phones[a.tenant_id] == phone:
                out.append(a)
        return sorted(out, key=lambda a: a.account_id)

    # --- 1. ask for a code ----------------------------------------------------------------

    def request_code(self, openid: str, property_id: object, building_id: object, room: object,
                     phone: object) -> dict:
        """Send a code if the phone is the room's tenant's; the same answer either way.
        ResendTooSoon (429) within a minute of the last code to the number, RateLimited (429)
        over a limit, ValidationError (400) for malformed input; nothing written then."""
        pid, bid, room_text, number = _input(property_id, building_id, room, phone)
        require_id(openid, "openid")
        now = self.clock()
        subject = rules.subject(number)
        wait = rules.resend_wait(store.get(subject), now)
        if wait:
            raise rules.ResendTooSoon(wait)
        openid_rule, ip_rule, phone_rule = otp_rules()
        self.limiter.check(openid_rule, openid)
        self.limiter.check(ip_rule, client_ip())
        self.limiter.check(phone_rule, number)
        found = self.matches(pid, bid, room_text, number)
        code = rules.new_code()
        target = rules.target([a.account_id for a in found], pid, rules.normalize_room(room_text))
        rec = rules.record(subject, openid, rules.code_hash(self.key(), number, target, openid, code), now)
        if not store.put(rec, rules.cooldown_before(now), purge_at=now + rules.TTL + rules.KEEP_AFTER_EXPIRY):
            raise rules.ResendTooSoon(rules.resend_wait(store.get(subject), now) or 1)
        if found:
            result = self.send(number, code)
            outcome = getattr(getattr(result, "outcome", None), "value", str(result))
            _log().info("binding code sent", property_id=pid, account_id=found[0].account_id,
                        to=mask("sms", e164(number)), outcome=outcome, detail=getattr(result, "detail", ""))
        return {"message": rules.SENT_MESSAGE, "resend_after": int(rules.RESEND_AFTER.total_seconds()),
                "expires_in": int(rules.TTL.total_seconds())}

    # --- 2. bind with it ------------------------------------------------------------------

    def bind(self, openid: str, property_id: object, building_id: object, room: object, phone: object,
             code: object) -> dict:
        """Check the code (one attempt spent) and bind as a binding code does; CodeRefused
        (400) with the reason (wrong with attempts left, burned, expired, used, none asked)."""
        pid, bid, room_text, number = _input(property_id, building_id, room, phone)
        typed = rules.normalize_code(code)
        require_id(openid, "openid")
        now = self.clock()
        subject = rules.subject(number)
        rec, taken = store.take_attempt(subject, openid, rules.MAX_ATTEMPTS)
        verdict = rules.status(rec, openid, now, taken)
        found: list[Account] = []
        if verdict is None:
            found = self.matches(pid, bid, room_text, number)
            target = rules.target([a.account_id for a in found], pid, rules.normalize_room(room_text))
            verdict = rules.compare(rec, rules.code_hash(self.key(), number, target, openid, typed))
            if verdict is rules.Verdict.OK and not store.mark_used(subject, rec.code_hash, format_time(now)):
                verdict = rules.Verdict.USED  # another check with the same code won
        if verdict is not rules.Verdict.OK or not found:
            raise rules.refusal(verdict if verdict is not rules.Verdict.OK else rules.Verdict.WRONG, rec)
        masked = mask("sms", e164(number))
        answers = [bindings.join(openid, a, now, rules.VIA_PHONE, {"phone": masked}) for a in found]
        return answers[0]


def _same_form(phone: str) -> str:
    try:
        return rules.normalize_phone(phone)
    except Exception:
        return ""


def _input(property_id: object, building_id: object, room: object, phone: object) -> tuple[str, str | None, str, str]:
    pid = require_id(property_id, "property_id")
    bid = require_id(building_id, "building_id") if building_id not in (None, "") else None
    rules.normalize_room(room)  # a 400 for an empty or long room before anything is read
    return pid, bid, str(room), rules.normalize_phone(phone)
