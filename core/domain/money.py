"""Money is an integer number of fen (分) inside the system; yuan strings only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from core.domain.errors import ValidationError

# A single posting above this is almost certainly a unit mistake (yuan vs fen).
MAX_POSTING_FEN = 100_000_000  # 1,000,000.00 yuan


def require_fen(value: object, field: str = "amount", *, positive: bool = True) -> int:
    """Return ``value`` as fen, refusing anything that is not a plain integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"{field} 必须是以分为单位的整数", code="amount_not_integer", field=field
        )
    if positive and value <= 0:
        raise ValidationError(f"{field} 必须大于 0", code="amount_not_positive", field=field)
    if abs(value) > MAX_POSTING_FEN:
        raise ValidationError(f"{field} 超出允许范围", code="amount_too_large", field=field)
    return value


def yuan(fen: int) -> str:
    """Format fen as a yuan string with two decimals: 1234 -> '12.34', -5 -> '-0.05'."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def parse_yuan(text: str, field: str = "amount") -> int:
    """Parse a yuan string with at most two decimals into fen, exactly."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValidationError(f"{field} 不是有效金额", code="amount_invalid", field=field) from None
    if not value.is_finite():
        raise ValidationError(f"{field} 不是有效金额", code="amount_invalid", field=field)
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValidationError(f"{field} 最多两位小数", code="amount_precision", field=field)
    return int(fen)
