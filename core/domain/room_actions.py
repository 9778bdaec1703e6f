"""Rules of the console's room actions (docs/console.md, "Room actions"): binding codes,
counter receipt numbers, the form values an admin types (yuan, alarm amounts, reasons)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from core.domain.errors import ValidationError
from core.domain.money import MAX_POSTING_FEN, parse_yuan

# A binding code: 8 characters without the look-alikes 0 O 1 I L (31^8 ≈ 8.5e11 codes),
# shown as "ABCD-EFGH"; single use, valid for a day (the tenant binds at home).
BINDING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BINDING_LENGTH = 8
BINDING_TTL = timedelta(hours=24)
BINDING_QR_PREFIX = "feikong://bind?code="
_BINDING_RE = re.compile(f"^[{BINDING_ALPHABET}]{{{BINDING_LENGTH}}}$")

RECEIPT_PREFIX = "C"
REASON_MAX = 100


def new_binding_code() -> str:
    return "".join(secrets.choice(BINDING_ALPHABET) for _ in range(BINDING_LENGTH))


def normalize_binding_code(value: object) -> str:
    """A code as a person may type it ("abcd-efgh", spaces) -> "ABCDEFGH"; else a 400."""
    text = re.sub(r"[\s\-]", "", value).upper() if isinstance(value, str) else ""
    if not _BINDING_RE.fullmatch(text):
        raise ValidationError("绑定码格式无效（8 位字母或数字）", code="binding_code_invalid", field="code")
    return text


def show_binding_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def new_receipt_no(now: datetime) -> str:
    """A counter receipt number: unique (time to the second plus 32 random bits), 23
    characters of the set WeChat Pay's out numbers use (the ledger entry id carries it)."""
    return f"{RECEIPT_PREFIX}{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(4).upper()}"


def yuan_to_fen(text: object, label: str, field: str, *, positive: bool = True, allow_negative: bool = False) -> int:
    """A yuan amount typed in a form ("12.5", "100") as fen, with a Chinese message naming
    the field when it is not one."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise ValidationError(f"请填写{label}", code="field_required", field=field)
    try:
        fen = parse_yuan(str(text), field)
    except ValidationError:
        raise ValidationError(f"{label}必须是金额（元，最多两位小数）", code="amount_invalid", field=field) from None
    if positive and fen <= 0:
        raise ValidationError(f"{label}必须大于 0", code="amount_not_positive", field=field)
    if fen < 0 and not allow_negative:
        raise ValidationError(f"{label}不能为负数", code="amount_negative", field=field)
    if abs(fen) > MAX_POSTING_FEN:
        raise ValidationError(f"{label}超出允许范围", code="amount_too_large", field=field)
    return fen


def require_reason(value: object) -> str:
    reason = value.strip() if isinstance(value, str) else ""
    if not reason:
        raise ValidationError("请填写操作原因", code="reason_required", field="reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"操作原因不能超过 {REASON_MAX} 个字", code="reason_too_long", field="reason")
    return reason
