"""Posting to the ledger, reading balances and entries.

One request per posting in the common case: the service remembers each account's
last known state (balance, version) and plans the entry against it; the transaction
is conditioned on the version, so a stale memory can never write a wrong balance — it
only costs a retry with the fresh state that the failed transaction handed back.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from aws_lambda_powertools import Logger
from cachetools import LRUCache

from core.domain.clock import Clock, utcnow
from core.domain.errors import (
    ContentionError,
    FeikongError,
    IdempotencyConflict,
    NotFound,
    WriteRefused,
)
from core.domain.ledger import AccountState, Entry, PostingRequest, plan_posting, require_id
from core.domain.writes import Write
from core.services.cache import state_cache
from core.store.ledger import LedgerRepository, LedgerStore

log = Logger(service="feikong", child=True)

Hook = Callable[[AccountState, Entry], tuple[dict, list[Write]]]


class LedgerService:
    def __init__(self, store: LedgerRepository | None = None, clock: Clock = utcnow, max_attempts: int = 200,
                 cache_size: int | None = None) -> None:
        self.store: LedgerRepository = store or LedgerStore()
        self.clock = clock
        self.max_attempts = max_attempts
        # the last known state of the accounts used most recently (bounded: FEIKONG_STATE_CACHE_SIZE)
        self._states: LRUCache[str, AccountState] = state_cache(cache_size)
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------

    def post(self, extras: Iterable[Write] = (), hook: Hook | None = None, fresh: bool = False,
             **fields: object) -> Entry:
        """Validate and post one entry; see PostingRequest.build for the fields."""
        return self.post_request(PostingRequest.build(**fields), extras, hook, fresh)

    def post_request(self, req: PostingRequest, extras: Iterable[Write] = (), hook: Hook | None = None,
                     fresh: bool = False) -> Entry:
        """Post one entry with `extras` (write records) in the same transaction.
        `hook(state, entry)` may return (account control changes, more write records) decided against the exact state the entry is planned
        on; it runs again on every retry, so its decisions are never stale.
        fresh: plan on the account as the table holds it now rather than as remembered — for
        postings made away from the account's usual writer (a payment's credit in the
        notification function), whose memory is almost surely stale: one read costs less
        than a refused transaction."""
        extras = list(extras)
        state, fresh = (self._reload(req.account_id), True) if fresh else self._state(req.account_id)
        for attempt in range(self.max_attempts):
            try:
                entry = plan_posting(state, req, self.clock())
            except FeikongError:
                if not fresh:  # refuse only on what the table says now
                    state, fresh = self._reload(req.account_id), True
                    continue
                # A retried posting that was applied before is not refused now.
                done = self.store.get_entry(req.account_id, req.entry_id)
                if done is not None:
                    return self._same(done, req)
                raise
            changes, more = hook(state, entry) if hook else ({}, [])
            outcome = self.store.commit(entry, state, [*extras, *more], changes)
            if outcome.status == "applied":
                self._remember(req.account_id, state, entry, changes)
                log.info(
                    "ledger posting applied",
                    account_id=req.account_id,
                    entry_id=req.entry_id,
                    kind=str(req.kind),
                    amount=entry.amount,
                    balance_after=entry.balance_after,
                    actor=req.actor,
                    cause=req.cause,
                )
                return entry
            if outcome.status == "duplicate":
                log.info("ledger posting duplicate", account_id=req.account_id, entry_id=req.entry_id)
                return self._same(outcome.entry, req)
            if outcome.status == "stale":
                state, fresh = outcome.state, True
                self._store_state(state)
            elif outcome.status == "missing":
                self._forget(req.account_id)
                raise NotFound("账户不存在", code="account_not_found", account_id=req.account_id)
            elif outcome.status == "extra_failed":
                raise WriteRefused(
                    "记账条件不满足", outcome.refused, entry_id=req.entry_id,
                    failed=[type(r.write).__name__ for r in outcome.refused],
                )
            else:  # transaction conflict: back off a little, then read afresh
                time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
                state, fresh = self._reload(req.account_id), True
        raise ContentionError("账户繁忙，请稍后重试", account_id=req.account_id)

    @staticmethod
    def _same(done: Entry, req: PostingRequest) -> Entry:
        if not done.same_request(req):
            raise IdempotencyConflict(
                "该记账编号已用于另一笔不同的记账",
                entry_id=req.entry_id,
            )
        return done.as_duplicate()

    # -- account state memory -------------------------------------------------------

    def _state(self, account_id: str) -> tuple[AccountState, bool]:
        with self._lock:
            known = self._states.get(account_id)
        if known is not None:
            return known, False
        return self._reload(account_id), True

    def _reload(self, account_id: str) -> AccountState:
        state = self.store.load_state(account_id)
        if state is None:
            raise NotFound("账户不存在", code="account_not_found", account_id=account_id)
        self._store_state(state)
        return state

    def _store_state(self, state: AccountState) -> None:
        with self._lock:
            known = self._states.get(state.account_id)
            if known is None or known.version <= state.version:
                self._states[state.account_id] = state

    def _remember(self, account_id: str, before: AccountState, entry: Entry, changes: dict | None = None) -> None:
        control = dict(before.control)
        for k, v in (changes or {}).items():
            control[k] = v if v is not None else ("" if k == "cut_due_at" else None)
        self._store_state(
            replace(before, balance=entry.balance_after, version=entry.seq, last_posted_at=entry.posted_at, control=control)
        )

    def remember_control(self, account_id: str, changes: dict) -> None:
        """Record control changes written outside a posting (they do not bump version)."""
        with self._lock:
            known = self._states.get(account_id)
            if known is not None:
                control = dict(known.control)
                control.update({k: v for k, v in changes.items() if k != "cut_pending"})
                self._states[account_id] = replace(known, control=control)

    def state(self, account_id: str, fresh: bool = False) -> AccountState:
        if fresh:
            return self._reload(account_id)
        return self._state(account_id)[0]

    def remember(self, states: Iterable[AccountState]) -> None:
        """States the caller has just read consistently (month-end reads a building's
        accounts at once): postings plan on them without a read of their own. A state
        that is already stale costs one refused transaction, which returns the current one."""
        for st in states:
            self._store_state(st)

    def _forget(self, account_id: str) -> None:
        with self._lock:
            self._states.pop(account_id, None)

    def forget_all(self) -> None:
        """Drop remembered states (after an account's settings change elsewhere)."""
        with self._lock:
            self._states.clear()

    # -- reading ---------------------------------------------------------------------

    def balance(self, account_id: str) -> int:
        require_id(account_id, "account_id")
        return self._reload(account_id).balance

    def entries(
        self,
        account_id: str,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        newest_first: bool = True,
        cursor: dict | None = None,
    ) -> tuple[list[Entry], dict | None]:
        require_id(account_id, "account_id")
        if self.store.load_state(account_id) is None:
            raise NotFound("账户不存在", code="account_not_found", account_id=account_id)
        limit = max(1, min(int(limit), 500))
        return self.store.entries(account_id, since, until, limit, newest_first, cursor)

    def verify(self, account_id: str) -> dict:
        """Check balance == sum(entries) and that seqs run 1..n without gaps."""
        state = self._reload(account_id)
        entries = sorted(self.store.all_entries(account_id), key=lambda e: e.seq)
        total = sum(e.amount for e in entries)
        seqs_ok = [e.seq for e in entries] == list(range(1, len(entries) + 1))
        return {
            "account_id": account_id,
            "balance": state.balance,
            "sum_entries": total,
            "entries": len(entries),
            "version": state.version,
            "ok": total == state.balance and seqs_ok and state.version == len(entries),
        }
