"""Deposits (押金, docs/billing.md "Deposits"): taken and refunded at the counter, applied into
the prepaid balance (at move-out: it offsets a negative balance, and what is left is refunded
with the balance). Rules in core/domain/deposits.py; each movement is idempotent by its id
and recorded in the action log with the admin, the deposit before and after.

An application is one DynamoDB transaction: the ledger credit `deposit:<ref>` (ADJUST_CREDIT
"押金抵扣") and the deposit movement `apply:<ref>` (held must cover it), so no fen is ever
both held and spendable.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.domain import deposits as rules
from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.directory import Account
from core.domain.errors import ConditionFailed, NotFound
from core.domain.ledger import Entry, EntryKind, format_time
from core.domain.naming import require_id
from core.domain.writes import MoveDeposit
from core.services import action_log
from core.services.control import Control
from core.store import deposits as store
from core.store import directory as dstore

log = Logger(service="feikong", child=True)


class Deposits:
    def __init__(self, control: Control | None = None, clock: Clock = utcnow, *, deposits=store,
                 directory=dstore) -> None:
        self.control = control or Control(clock=clock)
        self.clock, self.store, self.directory = clock, deposits, directory

    def _account(self, property_id: str, account_id: str) -> Account:
        a = self.directory.get_account(require_id(account_id, "account_id"))
        if a is None or a.property_id != property_id:
            raise NotFound("账户不存在", code="account_not_found")
        return a

    # -- reads -----------------------------------------------------------------------------

    def view(self, property_id: str, account_id: str) -> dict:
        self._account(property_id, account_id)
        return self.of_account(account_id)

    def of_account(self, account_id: str) -> dict:
        return of_account(account_id, self.store)

    # -- movements -------------------------------------------------------------------------

    def take(self, admin: AdminPrincipal, property_id: str, account_id: str, amount: object, method: object,
             receipt_no: object, memo: object = "", ip: str = "") -> rules.Movement:
        """收取押金 at the counter (cash or bank transfer) with a receipt number."""
        return self._move(admin, ip, self._account(property_id, account_id), rules.TAKE, amount, method, receipt_no,
                          memo)

    def refund(self, admin: AdminPrincipal, property_id: str, account_id: str, amount: object, method: object,
               receipt_no: object, memo: object = "", ip: str = "") -> rules.Movement:
        """退还押金 at the counter; never more than is held."""
        return self._move(admin, ip, self._account(property_id, account_id), rules.REFUND, amount, method,
                          receipt_no, memo)

    def _move(self, admin: AdminPrincipal, ip: str, a: Account, kind: str, amount: object, method: object,
              ref: object, memo: object) -> rules.Movement:
        m = rules.movement(a.account_id, a.property_id, kind, amount, method, ref, f"admin:{admin.admin_id}",
                           format_time(self.clock()), memo)
        first = self.store.get_movement(a.account_id, m.movement_id)
        if first is not None:
            return rules.as_duplicate(first, m)
        before = self.store.held(a.account_id)
        rules.check_held(m, before)
        if not self.store.put_movement(m):  # the id came meanwhile, or held moved below the debit
            first = self.store.get_movement(a.account_id, m.movement_id)
            if first is not None:
                return rules.as_duplicate(first, m)
            rules.check_held(m, self.store.held(a.account_id))
            raise ConditionFailed("押金余额已变化，请重试", code="deposit_busy")
        self._audit(admin, ip, a, m, before)
        log.info("deposit movement", account_id=a.account_id, movement_id=m.movement_id, kind=kind, amount=m.amount)
        return m

    def apply(self, admin: AdminPrincipal | None, property_id: str, account_id: str, ref: str,
              amount: object = None, actor: str = "", ip: str = "") -> tuple[rules.Movement | None, Entry | None]:
        """押金抵扣: move `amount` (default: everything held) of the deposit into the prepaid
        balance, in one transaction with the ledger credit `deposit:<ref>`; a cut supply comes
        back if the balance is then above the restore line. `ref` names the occasion ("close",
        a final bill): the same ref again changes nothing. (None, None) when nothing is held."""
        a = self._account(property_id, account_id)
        actor = actor or (f"admin:{admin.admin_id}" if admin else "system")
        ref = require_id(ref, "ref", 64)
        first = self.store.get_movement(a.account_id, f"{rules.APPLY}:{ref}")
        before = self.store.held(a.account_id)
        if first is None:
            amount = before if amount is None else amount
            if amount == 0:
                return None, None
        else:
            amount = -first.amount
        m = rules.movement(a.account_id, a.property_id, rules.APPLY, amount, rules.APPLY_METHOD, ref, actor,
                           format_time(self.clock()), "押金抵扣")
        if first is None:
            rules.check_held(m, before)
        try:
            entry = self.control.credit(extras=[] if first else [MoveDeposit(m)], account_id=a.account_id,
                                        entry_id=f"deposit:{ref}", kind=EntryKind.ADJUST_CREDIT, amount=-m.amount,
                                        cause=f"deposit:{m.movement_id}", actor=actor, memo="押金抵扣")
        except ConditionFailed:  # held moved below it meanwhile: what stands now says why
            rules.check_held(m, self.store.held(a.account_id))
            raise
        if first is not None:
            return rules.as_duplicate(first, m), entry
        if admin is not None and not entry.duplicate:
            self._audit(admin, ip, a, m, before)
        log.info("deposit applied", account_id=a.account_id, ref=ref, amount=-m.amount, duplicate=entry.duplicate)
        return m, entry

    def apply_at_close(self, property_id: str, account_id: str, actor: str,
                       admin: AdminPrincipal | None = None) -> tuple[rules.Movement | None, Entry | None]:
        """At move-out: the whole deposit into the balance (it offsets what is owed; the rest is
        refunded with the balance). Idempotent: ref `close`."""
        return self.apply(admin, property_id, account_id, "close", None, actor)

    def _audit(self, admin: AdminPrincipal, ip: str, a: Account, m: rules.Movement, before: int) -> None:
        action_log.record(admin, f"deposit_{m.kind}", property_id=a.property_id, target=a.account_id,
                          before={"held": before},
                          after={"held": before + m.amount, "amount": abs(m.amount), "method": m.method, "ref": m.ref,
                                 "memo": m.memo},
                          ip=ip, record_id=f"deposit-{a.account_id}-{m.movement_id}", clock=self.clock)


_default: Deposits | None = None


def service() -> Deposits:
    global _default
    if _default is None:
        _default = Deposits()
    return _default


def held(account_id: str) -> int:
    return store.held(account_id)


def of_account(account_id: str, repo=store) -> dict:
    """What is held and every movement, newest first (the caller has checked who may see it)."""
    held_now, movements = repo.deposit(account_id)
    return {"account_id": account_id, "held": held_now, "movements": [
        {"movement_id": m.movement_id, "kind": m.kind, "kind_name": m.kind_name, "amount": m.amount,
         "method": m.method, "ref": m.ref, "at": m.at, "memo": m.memo} for m in reversed(movements)]}
