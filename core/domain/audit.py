"""The ledger audit's rule: does an account's chain of entries, from its last verified
checkpoint on, add up to its balance?

An account's entries carry seq 1, 2, 3... without gaps, strictly increasing posted_at, and
each balance_after is the previous one plus the entry's amount; the account's balance and
version are those of its last entry. The audit verifies that once per entry: a checkpoint
(seq n, its balance_after and posted_at) says "verified up to n", and each night checks
only the entries after it. Pure: the caller reads, this decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.domain.ledger import Entry


@dataclass(frozen=True)
class Checkpoint:
    """Entries up to seq are verified; balance and posted_at are that entry's. seq 0: none yet."""

    seq: int = 0
    balance: int = 0
    posted_at: str = ""


START = Checkpoint()

# problem code -> what a person reads in the alert
PROBLEMS = {
    "seq_break": "账本流水序号不连续（缺失、重复或乱序）",
    "time_order": "账本流水记账时间未严格递增",
    "balance_chain": "账本流水的变动后余额与上一笔加本笔金额不符",
    "version_mismatch": "账户版本号与最后一笔流水的序号不符",
    "balance_mismatch": "账户余额与最后一笔流水的变动后余额不符",
    "version_behind": "账户版本号低于已核对的流水序号",
}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checkpoint: Checkpoint  # ok: the new checkpoint; otherwise the old one, unchanged
    read: int  # entries looked at
    problem: str = ""  # a key of PROBLEMS
    seq: int = 0  # the entry (or account version) where the problem is
    detail: dict = field(default_factory=dict)


def check_increment(checkpoint: Checkpoint, entries: Sequence[Entry], balance: int, version: int) -> Verdict:
    """Verify the entries after `checkpoint` (in posted_at order, as the time index gives
    them) against the account's `balance` and `version`. On any problem the checkpoint
    stays where it was, so the next audit meets the same entries again."""

    def bad(problem: str, seq: int, **detail: object) -> Verdict:
        return Verdict(False, checkpoint, len(entries), problem, seq, dict(detail))

    if version < checkpoint.seq:
        return bad("version_behind", version, checkpoint_seq=checkpoint.seq)
    seq, running, posted_at = checkpoint.seq, checkpoint.balance, checkpoint.posted_at
    for e in entries:
        if e.seq != seq + 1:
            return bad("seq_break", e.seq, expected=seq + 1, entry_id=e.entry_id)
        if e.posted_at <= posted_at:
            return bad("time_order", e.seq, posted_at=e.posted_at, previous=posted_at, entry_id=e.entry_id)
        if e.balance_after != running + e.amount:
            return bad("balance_chain", e.seq, expected=running + e.amount, found=e.balance_after,
                       amount=e.amount, entry_id=e.entry_id)
        seq, running, posted_at = e.seq, e.balance_after, e.posted_at
    if seq != version:
        return bad("version_mismatch", version, last_entry_seq=seq)
    if running != balance:
        return bad("balance_mismatch", seq, balance=balance, balance_after=running)
    return Verdict(True, Checkpoint(seq, running, posted_at), len(entries))
