"""Post-paid period bills (后付费, docs/billing.md): a closed month's metered cost, read from the
monthly usage aggregates, becomes the energy/water lines of the account's bill for the
period, and in the same DynamoDB transaction an ADJUST_CREDIT "转入账单" of the same amount
moves it out of the ledger balance. The rules (what a run bills, late usage, ids) are in
core/domain/postpaid.py.

`bill_period(account_id, period, actor)` is idempotent: a rerun plans nothing new (every
billing's ledger entry is there), and a run that died between two billings is finished by
the next one. Two runs at once plan the same billing ids; one wins, the other re-reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from aws_lambda_powertools import Logger

from core.domain import postpaid as rules
from core.domain.bills import BillLine, bill_id_of
from core.domain.clock import Clock, utcnow
from core.domain.directory import Account, PaymentMode
from core.domain.errors import IdempotencyConflict, NotFound, WriteRefused
from core.domain.ledger import ACCOUNT_OPEN, EntryKind, format_time
from core.domain.naming import require_id
from core.domain.writes import AddBillLine
from core.services.ledger import LedgerService
from core.store import directory as dstore
from core.store import ledger as ledger_store
from core.store import usage as usage_store

log = Logger(service="feikong", child=True)

ATTEMPTS = 3  # plans per run: a concurrent run's billing makes the next plan re-read


@dataclass(frozen=True)
class PeriodResult:
    account_id: str
    period: str
    status: str  # billed | nothing | skipped_prepaid | skipped_closed
    bill_id: str = ""
    billed: int = 0  # fen moved to the bill by this run
    lines: list[dict] = field(default_factory=list)  # {"charge_id", "amount", "usage_month", "duplicate"}


class Postpaid:
    def __init__(self, ledger: LedgerService | None = None, clock: Clock = utcnow, *, usage=usage_store,
                 directory=dstore, settle: timedelta = timedelta(0)) -> None:
        self.ledger = ledger or LedgerService(clock=clock)
        self.clock, self.usage, self.directory = clock, usage, directory
        self.settle = settle  # how long after month end a month may be billed (late readings are billed later anyway)

    def bill_period(self, account_id: str, period: str, actor: str, due: date | None = None,
                    account: Account | None = None) -> PeriodResult:
        """`account`: the account as the caller read it (month-end reads a building's at once)."""
        require_id(account_id, "account_id")
        first = rules.parse_period(period)
        rules.require_closed(period, self.clock(), self.settle)
        if account is None or account.account_id != account_id:
            account = self.directory.get_account(account_id)
        if account is None:
            raise NotFound("账户不存在", code="account_not_found")
        if account.payment_mode != PaymentMode.POSTPAID:
            return PeriodResult(account_id, period, "skipped_prepaid")
        if account.status != ACCOUNT_OPEN:
            return PeriodResult(account_id, period, "skipped_closed")
        done: list[dict] = []
        for _ in range(ATTEMPTS):
            billings = rules.plan(period, self._usage(account_id, first), self._billed(account_id, first))
            if not billings:
                break
            try:
                for b in billings:
                    done.append(self._post(account, b, actor, due))
            except (IdempotencyConflict, WriteRefused):  # another run billed it meanwhile: plan again
                log.info("postpaid billing raced", account_id=account_id, period=period)
                continue
            break
        billed = sum(d["amount"] for d in done if not d["duplicate"])
        log.info("postpaid period billed", account_id=account_id, period=period, billed=billed, lines=len(done))
        return PeriodResult(account_id, period, "billed" if billed else "nothing", bill_id_of(account_id, period),
                            billed, done)

    def _usage(self, account_id: str, first: date) -> dict[str, dict[str, rules.MonthUsage]]:
        """month -> source -> aggregate, for the period and the LOOKBACK months before it (one Query)."""
        rows = self.usage.months(account_id, rules.add_months(first, -rules.LOOKBACK), first)
        return {r.period: rules.month_usage(r.period, ((c.kind, c.quantity, c.fen) for c in r.cells)) for r in rows}

    def _billed(self, account_id: str, first: date) -> dict[tuple[str, str], rules.Billed]:
        """What of each (source, month) was billed, from its billings' ledger entries
        (`tobill:<source>:<month>.<n>`), the period's and the LOOKBACK months' before it:
        one Query of the account's billing entries."""
        months = {rules.month_key(rules.add_months(first, -k)) for k in range(rules.LOOKBACK + 1)}
        found: dict[tuple[str, str], dict[int, int]] = {}
        for e in ledger_store.entries_by_prefix(account_id, f"{rules.ENTRY_PREFIX}:"):
            parsed = rules.parse_entry_id(e.entry_id)
            if parsed is not None and parsed[1] in months:
                found.setdefault(parsed[:2], {})[parsed[2]] = e.amount
        out = {}
        for key, by_n in found.items():
            count = amount = 0
            while count + 1 in by_n:  # 1, 2, ... until one is absent, as the billings are numbered
                count, amount = count + 1, amount + by_n[count + 1]
            if count:
                out[key] = rules.Billed(count, amount)
        return out

    def _post(self, account, b: rules.Billing, actor: str, due: date | None) -> dict:
        charge = b.charge(account.account_id, account.property_id)
        line = BillLine.of(charge, b.amount, format_time(self.clock()), actor)
        entry = self.ledger.post(
            extras=[AddBillLine(line, account.property_id, due=due.isoformat() if due else None,
                                building_id=account.building_id, room_id=account.room_id, account_name=account.name)],
            account_id=account.account_id, entry_id=b.entry_id, kind=EntryKind.ADJUST_CREDIT, amount=b.amount,
            cause=f"bill:{bill_id_of(account.account_id, b.period)}", actor=actor, memo="转入账单",
        )
        return {"charge_id": charge.charge_id, "amount": b.amount, "usage_month": b.usage.month,
                "duplicate": entry.duplicate}


_default: Postpaid | None = None


def bill_period(account_id: str, period: str, actor: str, due: date | None = None) -> PeriodResult:
    """Bill a closed month of a post-paid account (docs/billing.md); idempotent."""
    global _default
    if _default is None:
        _default = Postpaid()
    return _default.bill_period(account_id, period, actor, due)
