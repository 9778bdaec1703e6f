"""The nightly ledger audit, incremental: each account keeps a checkpoint (verified up to
seq n, with that entry's balance_after), so a night reads only the entries posted since.

`run` pages through the accounts; up to one batch it verifies them itself, past that it
queues every batch for the worker (`run_batch_message`), so no Lambda's work grows with
the number of accounts or with history. A mismatch leaves an open `ledger_audit` event on
the account for a person, and its checkpoint does not move.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import chain, islice

from aws_lambda_powertools import Logger

from core.domain.audit import PROBLEMS, START, Checkpoint, Verdict, check_increment
from core.domain.clock import Clock, utcnow
from core.domain.ledger import format_time
from core.integrations import queues
from core.services import observability
from core.settings import get_settings
from core.store import audit as store

log = Logger(service="feikong", child=True)

def batch_size() -> int:
    """Accounts a queued message carries, and the most verified without fanning out
    (FEIKONG_AUDIT_BATCH_SIZE, default 100)."""
    return get_settings().audit_batch_size


def _chunks(ids: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(ids)
    while chunk := list(islice(it, size)):
        yield chunk


def run(full: bool = False, size: int | None = None, clock: Clock = utcnow,
        property_ids: list[str] | None = None) -> dict:
    """Audit every account (or those of `property_ids`): here if they fit in one batch,
    else by queued batches. full: ignore the checkpoints and verify every entry again (on demand)."""
    size = size or batch_size()
    chunks = _chunks(store.account_ids(page_size=1000, property_ids=property_ids), size)
    first = next(chunks, [])
    second = next(chunks, None)
    if second is None:
        result = verify_accounts(first, full, clock)
        return {"accounts": len(first), "batches": 0, **result}
    accounts = batches = 0
    pending: list[dict] = []
    for chunk in chain([first, second], chunks):
        pending.append({"account_ids": chunk, "full": full})
        accounts += len(chunk)
        batches += 1
        if len(pending) == 10:
            queues.send_audit_batches(pending)
            pending = []
    if pending:
        queues.send_audit_batches(pending)
    log.info("ledger audit fanned out", accounts=accounts, batches=batches)
    return {"accounts": accounts, "batches": batches, "checked": 0, "advanced": 0, "entries_read": 0, "broken": []}


def run_batch_message(body: str) -> dict:
    """One queued batch (the worker). A malformed message is logged and dropped: sending
    it again would not make it better."""
    try:
        msg = json.loads(body)
        ids = msg["account_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError("account_ids must be a list of ids")
    except (ValueError, KeyError, TypeError) as e:
        log.error("ledger audit batch refused", reason=str(e))
        return {"refused": str(e)}
    return verify_accounts(ids, bool(msg.get("full")), utcnow)


def verify_accounts(account_ids: list[str], full: bool = False, clock: Clock = utcnow) -> dict:
    """Verify these accounts from their checkpoints (or from the start, if full)."""
    checked = advanced = read = 0
    broken: list[dict] = []
    found = store.subjects(account_ids)
    for account_id in account_ids:
        subject = found.get(account_id)
        if subject is None:
            continue  # gone since the scan (accounts are never deleted today)
        verdict, moved = verify_account(subject, full, clock)
        checked += 1
        read += verdict.read
        advanced += moved
        if not verdict.ok:
            broken.append({"account_id": account_id, "problem": verdict.problem, "seq": verdict.seq,
                           "checkpoint_seq": verdict.checkpoint.seq, **verdict.detail})
    log.info("ledger audit batch done", checked=checked, advanced=advanced, entries_read=read, broken=len(broken))
    observability.count("LedgerAuditFailures", len(broken))
    return {"checked": checked, "advanced": advanced, "entries_read": read, "broken": broken}


def verify_account(subject: store.Subject, full: bool = False, clock: Clock = utcnow) -> tuple[Verdict, bool]:
    """(verdict, whether the checkpoint moved) for one account."""
    start = START if full else subject.checkpoint
    entries = store.entries_after(subject.account_id, start)
    if entries and max(e.seq for e in entries) > subject.version:
        # Entries beyond the version read first: postings since that read (tomorrow's
        # work) if the account has moved on to them, else entries the account never took.
        now = store.subject(subject.account_id)
        if now is not None and now.version >= max(e.seq for e in entries):
            entries = [e for e in entries if e.seq <= subject.version]
    verdict = check_increment(start, entries, subject.balance, subject.version)
    at = format_time(clock())
    if not verdict.ok:
        _alert(subject, start, verdict, at)
        return verdict, False
    if verdict.checkpoint == subject.checkpoint:
        return verdict, False
    moved = store.advance(subject.account_id, subject.checkpoint, verdict.checkpoint, at)
    if not moved:
        log.warning("ledger audit checkpoint moved by another audit", account_id=subject.account_id)
    return verdict, moved


def _alert(subject: store.Subject, start: Checkpoint, verdict: Verdict, at: str) -> None:
    data = {"problem": verdict.problem, "seq": verdict.seq, "checkpoint_seq": start.seq,
            **{k: str(v) for k, v in verdict.detail.items()}}
    log.error("ledger audit mismatch", account_id=subject.account_id, **data)
    store.record_mismatch(subject.account_id, subject.property_id, f"{verdict.problem}:{verdict.seq}", at,
                          PROBLEMS[verdict.problem], data)
