"""One-time SMS codes (table `otp_codes`; docs/tenant-auth.md "Bindings"): one record per
phone number, replaced by a conditional put (the resend cool-down), each check one
conditional UpdateItem that spends an attempt and hands the record back."""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from core.domain.phone_codes import CodeRecord
from core.store.models import OtpCodeItem
from core.store.tx import _response, connection, retrying, save_if, update_if


def _record(i: OtpCodeItem) -> CodeRecord:
    return CodeRecord(i.subject, i.openid, i.code_hash, i.sent_at, i.expires_at, int(i.attempts or 0),
                      i.used_at or "")


def _from_wire(item: dict) -> CodeRecord:
    return _record(OtpCodeItem.from_raw_data(item))


def get(subject: str) -> CodeRecord | None:
    """One consistent GetItem."""
    try:
        return _record(OtpCodeItem.get(subject, consistent_read=True))
    except OtpCodeItem.DoesNotExist:
        return None


def put(rec: CodeRecord, sent_before: str, purge_at: datetime) -> bool:
    """Store a new code for the number unless one was sent after `sent_before` (the resend
    cool-down): one conditional PutItem; False when the cool-down holds."""
    item = OtpCodeItem(rec.subject, openid=rec.openid, code_hash=rec.code_hash, sent_at=rec.sent_at,
                       expires_at=rec.expires_at, attempts=0, purge_at=purge_at)
    return save_if(item, OtpCodeItem.subject.does_not_exist() | (OtpCodeItem.sent_at <= sent_before))


def take_attempt(subject: str, openid: str, max_attempts: int) -> tuple[CodeRecord | None, bool]:
    """Spend one attempt of the number's code for `openid`: one UpdateItem (ADD attempts 1)
    on the condition that the code is theirs, unused and has attempts left. (record after
    the update, True) when taken; (the record as it is, False) when not (None: no record).
    Spending before comparing bounds the comparisons of a code to `max_attempts`, however
    many checks run at once. A lost answer retried may spend one more (the strict side)."""
    item = OtpCodeItem(subject)
    cond = (OtpCodeItem.subject.exists() & (OtpCodeItem.openid == openid) & OtpCodeItem.used_at.does_not_exist()
            & (OtpCodeItem.attempts < max_attempts))
    kwargs = item.get_update_kwargs_from_instance(actions=[OtpCodeItem.attempts.add(1)], condition=cond,
                                                  add_version_condition=False)
    kwargs["ReturnValues"] = "ALL_NEW"
    kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    try:
        response = retrying(lambda: connection().dispatch("UpdateItem", dict(kwargs)))
    except ClientError as e:
        answer = _response(e)  # botocore's own answer (pynamodb's wrapper drops the old item)
        if answer.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        old = answer.get("Item")
        return (_from_wire(old) if old else get(subject)), False
    return _from_wire(response["Attributes"]), True


def mark_used(subject: str, code_hash: str, at: str) -> bool:
    """Use the code once: True for the one check that sets `used_at` (the same code, unused)."""
    cond = OtpCodeItem.used_at.does_not_exist() & (OtpCodeItem.code_hash == code_hash)
    return update_if(OtpCodeItem(subject), [OtpCodeItem.used_at.set(at)], cond)
