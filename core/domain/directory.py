"""What is metered and who pays: properties, buildings, floors, rooms, tenants,
accounts, meters and sites, with the rules for valid values.

Plain dataclasses; core/store maps them to tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from core.domain.errors import ValidationError
from core.domain.ledger import ACCOUNT_OPEN
from core.domain.naming import require_id

_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")

# A balance below this (fen) is "low" in the console's overview: counted in its summary
# and highlighted in its room list (50 yuan: the default first alarm level).
LOW_BALANCE_FEN = 5000


class MeterKind(StrEnum):
    ELECTRIC_1P = "electric_1p"  # single-phase electricity meter
    ELECTRIC_3P = "electric_3p"  # three-phase electricity meter
    WATER = "water"  # water meter with a valve


class BillingMode(StrEnum):
    CLOUD = "cloud"  # the cloud rates readings and keeps the money
    METER = "meter"  # the meter keeps the money (电费下发到电表); the cloud mirrors it


class PaymentMode(StrEnum):
    """How an account pays (docs/billing.md): not the meter's BillingMode (where the money is kept)."""

    PREPAID = "prepaid"  # 预付费: the balance pays; below the cut-off line the supply is cut
    POSTPAID = "postpaid"  # 后付费: rated alike, never cut for money; billed each period


def require_payment_mode(value: object) -> str:
    if value not in tuple(PaymentMode):
        raise ValidationError("付费方式只能是 prepaid（预付费）或 postpaid（后付费）", code="payment_mode_invalid",
                              field="payment_mode")
    return str(value)


class RelayState(StrEnum):
    CLOSED = "closed"  # supply on (valve open for water)
    OPEN = "open"  # supply cut (relay tripped / valve closed)
    UNKNOWN = "unknown"


def require_name(value: object, field: str, max_len: int = 100) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} 不能为空", code="field_required", field=field)
    if len(value) > max_len:
        raise ValidationError(f"{field} 过长", code="field_too_long", field=field)
    return value.strip()


def require_decimal(value: object, field: str, label: str) -> str:
    """A positive quantity with at most two decimals, kept as a decimal string."""
    if isinstance(value, bool):
        value = None
    try:
        num = Decimal(str(value))
    except (InvalidOperation, ValueError):
        num = Decimal("NaN")
    if not num.is_finite() or num <= 0 or num > 1_000_000 or num != num.quantize(Decimal("0.01")):
        raise ValidationError(f"{label}必须大于 0 且最多两位小数", code=f"{field}_invalid", field=field)
    return str(num.quantize(Decimal("0.01")))


def require_area(value: object) -> str:
    """Room area in m²."""
    return require_decimal(value, "area_m2", "面积")


def require_phone(value: object) -> str:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise ValidationError("手机号格式无效", code="phone_invalid", field="phone")
    return value


@dataclass(frozen=True)
class Property:
    property_id: str
    name: str
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Building:
    property_id: str
    building_id: str
    name: str


@dataclass(frozen=True)
class Floor:
    property_id: str
    building_id: str
    floor_id: str
    name: str
    level: int


@dataclass(frozen=True)
class Room:
    property_id: str
    building_id: str
    floor_id: str
    room_id: str
    name: str
    area_m2: str


@dataclass(frozen=True)
class Tenant:
    """A person renting at one property. The same WeChat user may be a tenant at
    several properties; each property keeps its own record (an admin sees only theirs)."""

    tenant_id: str
    property_id: str
    name: str
    phone: str
    openid: str | None = None


@dataclass(frozen=True)
class Account:
    """A payer (户): holds a balance and one or more meters."""

    account_id: str
    property_id: str
    building_id: str
    room_id: str
    tenant_id: str
    name: str
    balance: int
    version: int
    overdraft_limit: int = 0
    status: str = ACCOUNT_OPEN
    keep_supply: bool = False  # 保电: never cut
    opened_at: str = ""
    cut_state: str = "none"  # none | pending | cut (core/domain/control.py)
    # the costs of the last 8 local days, (("YYYY-MM-DD", fen), ...) oldest first: the
    # forecast's input (core/domain/usage.py), kept on the account item by every metered posting
    daily_costs: tuple[tuple[str, int], ...] = ()
    # the control settings a tenant is shown with the balance (core/domain/tenant_view.py)
    restore_line: int = 0  # fen: a cut supply comes back above it (and above the cut-off line)
    alarm_levels: tuple[int, ...] = ()  # fen, descending; () = the defaults (core/domain/control.py)
    cut_due_at: str = ""  # when a pending cut runs (cut_state "pending")
    payment_mode: str = PaymentMode.PREPAID  # prepaid | postpaid (后付费: never cut for money; docs/billing.md)


@dataclass(frozen=True)
class Site:
    """An on-premise bridge with its own secret for signing queue messages. The secrets
    live in Secrets Manager, not with the site's record: `secret` (the current key: signs
    and verifies) and `previous_secret` (during a key rotation: still verifies) are filled
    in by the services; the store leaves them empty."""

    site_id: str
    property_id: str
    name: str
    secret: str = ""
    down_queue: str = ""
    previous_secret: str = ""

    def keys(self) -> tuple[str, ...]:
        """The keys a message from this site may be signed with, current first."""
        return tuple(k for k in (self.secret, self.previous_secret) if k)


@dataclass(frozen=True)
class Reading:
    """The last reading of a meter, stamped with the meter's own read time."""

    read_at: str
    total: str  # register value as a decimal string (kWh or m³)
    seq: int = 0
    registers: dict[str, str] = field(default_factory=dict)
    power_kw: str | None = None  # average kW over the interval this reading closes (electricity, billed readings)


@dataclass(frozen=True)
class Meter:
    meter_id: str
    property_id: str
    account_id: str
    site_id: str
    kind: MeterKind
    model: str  # meter profile name, e.g. "acrel-ddsy1352"
    bus: str
    address: int  # Modbus device id 1..247
    billing_mode: BillingMode = BillingMode.CLOUD
    rated_kw: str = "10"  # the most power the meter can pass; bounds plausible usage
    relay_state: RelayState = RelayState.UNKNOWN
    online: bool = False
    keep_supply: bool = False
    last_reading: Reading | None = None
    plan_id: str | None = None
    retired: bool = False

    @staticmethod
    def validate_address(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 247:
            raise ValidationError(
                "Modbus 地址必须是 1 到 247 的整数", code="address_invalid", field="address"
            )
        return value


def validate_ids(**ids: object) -> None:
    for name, value in ids.items():
        require_id(value, name)
