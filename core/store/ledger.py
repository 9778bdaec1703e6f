"""Accounts and their ledger: balances, append-only entries, and the account's control
fields (cut state, alarms, the reconciler's supply check).

A posting is one TransactWriteItems: put the entry if its id is absent, move the
account's balance and version if the version is still the one the plan was made
against, plus the items of the caller's write records (core.domain.writes, turned into
items by core/store/unit.py). On cancellation the items' old
values come back with the reasons (ReturnValuesOnConditionCheckFailure=ALL_OLD), so a
duplicate returns the first entry and a stale plan gets the fresh balance, both
without another read.

Every posting also adds to its account's report summary of the day and month (the usage
table's items, core/store/usage.py `Summary`; docs/reports.md) in the same transaction;
the extras that touch those items too (a rating's usage, a bill line, a bill payment) are
merged into the same one update per item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from core.domain.directory import Account
from core.domain.ledger import AccountState, Entry, EntryKind
from core.domain.writes import AddBillLine, AddUsage, PayBill, Refused, Write
from core.store import bills, payments, unit
from core.store.directory import account_item
from core.store.models import AccountItem, LedgerEntryItem
from core.store.tx import Failure, Tx, update_if, update_item
from core.store.usage import Summary

ENTRY_TAG = "entry"
ACCOUNT_TAG = "account"


@dataclass(frozen=True)
class Outcome:
    """What happened to a posting attempt."""

    status: str  # "applied" | "duplicate" | "stale" | "missing" | "extra_failed"
    entry: Entry | None = None
    state: AccountState | None = None
    refused: tuple[Refused, ...] = ()  # extra_failed: the extras whose conditions failed


class LedgerRepository(Protocol):
    """What the ledger service needs of a store (the real one below; testkit.fakes has an
    in-memory one that applies the same write records)."""

    def load_state(self, account_id: str) -> AccountState | None: ...

    def get_entry(self, account_id: str, entry_id: str) -> Entry | None: ...

    def commit(self, entry: Entry, state: AccountState, extras: Iterable[Write] = (),
               account_changes: dict | None = None) -> Outcome: ...

    def open_account(self, account: Account, opening: Entry | None) -> bool: ...

    def entries(self, account_id: str, since: str | None = None, until: str | None = None, limit: int = 50,
                newest_first: bool = True, cursor: dict | None = None) -> tuple[list[Entry], dict | None]: ...

    def all_entries(self, account_id: str) -> list[Entry]: ...


CONTROL_FIELDS = ("alarm_state", "cut_state", "cut_due_at", "cut_pending", "supply_check", "supply_check_at", "supply_token",
                  "daily_costs")  # daily_costs: the recent days' costs (core/domain/usage.py)


def state_from_item(item: AccountItem) -> AccountState:
    return AccountState(
        account_id=item.account_id,
        balance=int(item.balance),
        version=int(item.version),
        overdraft_limit=int(item.overdraft_limit or 0),
        status=item.status,
        last_posted_at=item.last_posted_at or "",
        property_id=item.property_id,
        settings_rev=int(item.settings_rev or 0),
        control={
            "keep_supply": bool(item.keep_supply),
            "payment_mode": item.payment_mode or "prepaid",  # postpaid: never cut for money (docs/billing.md)
            "meter_side": bool(item.meter_side),
            "restore_line": int(item.restore_line or 0),
            "alarm_levels": [int(x) for x in item.alarm_levels] if item.alarm_levels else None,
            "alarm_repeats": [int(x) for x in item.alarm_repeats] if item.alarm_repeats else None,
            "alarm_state": _plain(item.alarm_state),
            "cut_state": item.cut_state or "none",
            "cut_due_at": item.cut_due_at or "",
            "daily_costs": {k: int(v) for k, v in _plain(item.daily_costs).items()},
        },
    )


def _plain(value) -> dict:
    if value is None:
        return {}
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    return {k: (_plain(v) if isinstance(v, dict) or hasattr(v, "as_dict") else _num(v)) for k, v in value.items()}


def _num(v):
    from decimal import Decimal

    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def account_actions(changes: dict) -> list:
    """SET (or REMOVE, for None) actions on the control fields of an account."""
    actions = []
    for name, value in changes.items():
        if name not in CONTROL_FIELDS:
            raise ValueError(f"not a control field: {name}")
        attr = getattr(AccountItem, name)
        actions.append(attr.remove() if value is None else attr.set(value))
    return actions


def entry_from_item(item: LedgerEntryItem) -> Entry:
    return Entry(
        account_id=item.account_id,
        entry_id=item.entry_id,
        seq=int(item.seq),
        kind=EntryKind(item.kind),
        amount=int(item.amount),
        balance_after=int(item.balance_after),
        cause=item.cause,
        actor=item.actor,
        posted_at=item.posted_at,
        occurred_at=item.occurred_at,
        memo=item.memo or "",
        property_id=item.property_id or "",
    )


def entry_item(entry: Entry) -> LedgerEntryItem:
    return LedgerEntryItem(
        entry.account_id,
        entry.entry_id,
        seq=entry.seq,
        kind=str(entry.kind),
        amount=entry.amount,
        balance_after=entry.balance_after,
        cause=entry.cause,
        actor=entry.actor,
        posted_at=entry.posted_at,
        occurred_at=entry.occurred_at,
        memo=entry.memo,
        property_id=entry.property_id,
    )


class LedgerStore:
    """The ledger on DynamoDB."""

    def load_state(self, account_id: str) -> AccountState | None:
        try:
            return state_from_item(AccountItem.get(account_id, consistent_read=True))
        except AccountItem.DoesNotExist:
            return None

    def get_entry(self, account_id: str, entry_id: str) -> Entry | None:
        try:
            return entry_from_item(
                LedgerEntryItem.get(account_id, entry_id, consistent_read=True)
            )
        except LedgerEntryItem.DoesNotExist:
            return None

    def commit(
        self, entry: Entry, state: AccountState, extras: Iterable[Write] = (), account_changes: dict | None = None
    ) -> Outcome:
        extras = list(extras)
        tx = Tx()
        tx.put(entry_item(entry), LedgerEntryItem.entry_id.does_not_exist(), tag=ENTRY_TAG)
        account = AccountItem(entry.account_id)
        tx.update(
            account,
            [
                AccountItem.balance.set(entry.balance_after),
                AccountItem.version.set(entry.seq),
                AccountItem.last_posted_at.set(entry.posted_at),
                *account_actions(account_changes or {}),
            ],
            # The plan was made against this version and these settings; if either
            # changed (another writer, an admin's settings change), the plan is void.
            (AccountItem.version == state.version) & (AccountItem.settings_rev == state.settings_rev),
            tag=ACCOUNT_TAG,
        )
        summary = Summary()
        summary.posting(entry)
        for i, w in enumerate(extras):
            tag = f"{unit.PREFIX}{i}"
            if isinstance(w, AddUsage):
                summary.usage(w.usage)
            elif isinstance(w, AddBillLine):
                bills.add_line(tx, w, tag, summary)
            elif isinstance(w, PayBill):
                payments.add_pay_bill(tx, w, tag, summary)
            else:
                unit.add(tx, w, tag)
        summary.flush(tx, "summary")
        failures = tx.commit()
        if failures is None:
            return Outcome("applied", entry=entry)
        outcome = self._explain(failures, extras)
        if outcome.status == "duplicate" and tx.ambiguous and outcome.entry == entry:
            # An earlier attempt of this very transaction was applied but its answer was
            # lost (a 5xx): the entry found is the one planned here, to the microsecond of
            # posted_at, so the whole transaction (account, extras) went in with it.
            return Outcome("applied", entry=entry)
        return outcome

    @staticmethod
    def _explain(failures: list[Failure], extras: list[Write]) -> Outcome:
        by_tag = {f.tag: f for f in failures}
        dup = by_tag.get(ENTRY_TAG)
        if dup and dup.code == "ConditionalCheckFailed" and dup.item:
            return Outcome("duplicate", entry=entry_from_item(LedgerEntryItem.from_raw_data(dup.item)))
        acct = by_tag.get(ACCOUNT_TAG)
        if acct and acct.code == "ConditionalCheckFailed":
            if not acct.item:
                return Outcome("missing")
            return Outcome("stale", state=state_from_item(AccountItem.from_raw_data(acct.item)))
        # Tx.commit returns only cancellations with a ConditionalCheckFailed reason
        # (TransactionConflict and throttling are retried there), so this is an extra's.
        return Outcome("extra_failed", refused=unit.refusals(failures, extras))

    def open_account(self, account: Account, opening: Entry | None) -> bool:
        """Create the account (and its opening entry) unless it exists. False if it did."""
        item = account_item(account, opening.posted_at if opening is not None else account.opened_at)
        tx = Tx()
        tx.put(item, AccountItem.account_id.does_not_exist(), tag=ACCOUNT_TAG)
        if opening is not None:
            tx.put(entry_item(opening), LedgerEntryItem.entry_id.does_not_exist(), tag=ENTRY_TAG)
            summary = Summary()
            summary.posting(opening)
            summary.flush(tx, "summary")
        failures = tx.commit()
        if failures is None:
            return True
        if any(f.tag == ACCOUNT_TAG and f.code == "ConditionalCheckFailed" for f in failures):
            return False
        raise RuntimeError(f"opening account {item.account_id} failed: {failures}")

    def entries(
        self,
        account_id: str,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        newest_first: bool = True,
        cursor: dict | None = None,
    ) -> tuple[list[Entry], dict | None]:
        condition = None
        if since and until:
            condition = LedgerEntryItem.posted_at.between(since, until)
        elif since:
            condition = LedgerEntryItem.posted_at >= since
        elif until:
            condition = LedgerEntryItem.posted_at <= until
        result = LedgerEntryItem.by_time.query(
            account_id,
            range_key_condition=condition,
            scan_index_forward=not newest_first,
            limit=limit,
            last_evaluated_key=cursor,
            consistent_read=True,
            page_size=limit,
        )
        items = [entry_from_item(i) for i in result]
        return items, result.last_evaluated_key

    def all_entries(self, account_id: str) -> list[Entry]:
        return [
            entry_from_item(i)
            for i in LedgerEntryItem.query(account_id, consistent_read=True)
        ]


# --- accounts: control fields outside postings ----------------------------------------


def set_cut_state(account_id: str, cut_state: str, due_at: str = "", expected: str | None = None) -> bool:
    actions = [AccountItem.cut_state.set(cut_state)]
    if cut_state == "pending":
        actions += [AccountItem.cut_due_at.set(due_at), AccountItem.cut_pending.set("Y")]
    else:
        actions += [AccountItem.cut_due_at.remove(), AccountItem.cut_pending.remove()]
    cond = AccountItem.account_id.exists()
    if expected is not None:
        cond &= AccountItem.cut_state == expected
    return update_if(AccountItem(account_id), actions, cond)


def set_alarm_state(account_id: str, state: dict) -> None:
    update_item(AccountItem(account_id), [AccountItem.alarm_state.set(state)])


def due_cuts(now_iso: str, limit: int = 500) -> list[str]:
    return [i.account_id for i in AccountItem.by_cut_due.query("Y", AccountItem.cut_due_at <= now_iso, limit=limit)]


# --- supply checks (the reconciler's work list) ----------------------------------------


def flag_supply(account_id: str, at: str, token: str) -> None:
    """Ask the reconciler to look at an account's supply at `at` (or earlier if asked)."""
    update_item(
        AccountItem(account_id),
        [AccountItem.supply_check.set("Y"), AccountItem.supply_check_at.set(at), AccountItem.supply_token.set(token)],
        AccountItem.account_id.exists(),
    )


def supply_check(account_id: str) -> tuple[str, str] | None:
    """(token, due at) of an account's pending supply check, None if there is none."""
    try:
        i = AccountItem.get(account_id, consistent_read=True, attributes_to_get=["supply_check", "supply_token",
                                                                                  "supply_check_at"])
    except AccountItem.DoesNotExist:
        return None
    return (i.supply_token or "", i.supply_check_at or "") if i.supply_check else None


def settle_supply_check(account_id: str, token: str, next_at: str | None) -> bool:
    """Clear the check (next_at None) or move it to next_at, unless somebody flagged the
    account again meanwhile (the token changed): then their flag stands."""
    if next_at is None:
        actions = [AccountItem.supply_check.remove(), AccountItem.supply_check_at.remove(),
                   AccountItem.supply_token.remove()]
    else:
        actions = [AccountItem.supply_check_at.set(next_at)]
    return update_if(AccountItem(account_id), actions, AccountItem.supply_token == token)


def due_supply_checks(now_iso: str, limit: int = 500) -> list[str]:
    return [i.account_id for i in AccountItem.by_supply_check.query("Y", AccountItem.supply_check_at <= now_iso,
                                                                    limit=limit)]


# --- the room detail page's reads (core/services/room_detail.py) -----------------------


def entries_page(account_id: str, limit: int, after: tuple[str, str] | None = None
                 ) -> tuple[list[Entry], tuple[str, str] | None]:
    """An account's entries newest first, `limit` of them after (posted_at, entry_id) of the
    previous page's last entry; and that pair for the next page, None on the last page.
    One consistent Query of by_time for limit + 1 items (so a full last page is known as last)."""
    start = None
    if after is not None:
        posted_at, entry_id = after
        start = {"account_id": {"S": account_id}, "entry_id": {"S": entry_id}, "posted_at": {"S": posted_at}}
    items = list(LedgerEntryItem.by_time.query(account_id, scan_index_forward=False, limit=limit + 1,
                                               page_size=limit + 1, last_evaluated_key=start, consistent_read=True))
    entries = [entry_from_item(i) for i in items[:limit]]
    more = len(items) > limit and entries
    return entries, ((entries[-1].posted_at, entries[-1].entry_id) if more else None)


def usage_points(account_id: str, since: str) -> list:
    """An account's metered entries (energy, water) posted at or after `since`, reduced to
    when, kind, amount and memo (a projection: one Query of by_time, paged by DynamoDB)."""
    from core.domain.room_detail import UsagePoint

    return [
        UsagePoint(at=i.occurred_at or i.posted_at, kind=i.kind, amount=int(i.amount), memo=i.memo or "")
        for i in LedgerEntryItem.by_time.query(
            account_id, LedgerEntryItem.posted_at >= since, consistent_read=True,
            filter_condition=LedgerEntryItem.kind.is_in("energy", "water"),
            attributes_to_get=["posted_at", "occurred_at", "kind", "amount", "memo"])
    ]


def account_details(account_ids: list[str]) -> list[tuple[Account, AccountState]]:
    """Accounts with their control state (cut, alarms, restore line), one consistent BatchGet."""
    from core.store.directory import _account

    keys = list(dict.fromkeys(account_ids))
    return [(_account(i), state_from_item(i)) for i in AccountItem.batch_get(keys, consistent_read=True)] if keys else []


def entries_by_prefix(account_id: str, prefix: str) -> list[Entry]:
    """The account's entries whose id starts with `prefix`, in id order: one consistent Query
    (post-paid billings, `tobill:...`, read at once rather than one GetItem per id)."""
    return [entry_from_item(i) for i in
            LedgerEntryItem.query(account_id, LedgerEntryItem.entry_id.startswith(prefix), consistent_read=True)]
