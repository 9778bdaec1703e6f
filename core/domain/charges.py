"""A charge: one amount one account owes for one period from one source (docs/billing.md).

Charge items, common-area apportionment, late fees and post-paid usage all end as
charges; core/services/bills.py applies them, each either deducted from the prepaid
balance (a FEE posting; the part the overdraft line stops becomes a bill line) or put on
the account's bill for the period. The charge id is deterministic, so applying a charge
twice (a rerun of month-end, a redelivered message) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.domain.errors import ValidationError
from core.domain.money import require_fen
from core.domain.naming import require_id

DEDUCT = "deduct"  # from the prepaid balance at the period start
BILL = "bill"  # on the period's bill, with a due date
MODES = (DEDUCT, BILL)

# where a charge comes from (the first part of its id)
SOURCES = ("item", "apportion", "late_fee", "energy", "water", "settlement")


@dataclass(frozen=True)
class Charge:
    account_id: str
    property_id: str
    period: str  # the billing period it belongs to: "YYYY-MM" (or "YYYY-MM-DD" for a day's late fee)
    source: str  # one of SOURCES
    source_id: str  # the charge item, apportionment group, bill, ...
    amount: int  # fen, > 0
    name: str  # what the tenant reads: "物业费", "公摊电费"
    formula: str = ""  # how it was worked out, in words the tenant reads: "85.50 m² × 2.35 元/m² = 200.93 元"
    inputs: dict = field(default_factory=dict)  # the formula's inputs, as plain values
    mode: str = BILL

    def __post_init__(self) -> None:
        require_id(self.account_id, "account_id")
        require_fen(self.amount, "amount")
        if self.source not in SOURCES:
            raise ValidationError(f"未知的费用来源 {self.source}", code="charge_source_invalid", field="source")
        if self.mode not in MODES:
            raise ValidationError("扣费方式只能是 deduct 或 bill", code="charge_mode_invalid", field="mode")
        if not self.name.strip():
            raise ValidationError("费用名称不能为空", code="field_required", field="name")

    @property
    def charge_id(self) -> str:
        """Deterministic: one charge per (source, source id, account, period)."""
        return f"{self.source}:{self.source_id}:{self.period}"
