"""What the ledger audit reads and writes: accounts with their audit checkpoint (attributes
of the account item), the entries after a checkpoint (the ledger's `by_time` local index:
posted_at strictly increases with seq, so "after the checkpoint's posted_at" is "after its
seq"), the checkpoint's advance and the alert a mismatch leaves for a person."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

from core.domain.audit import Checkpoint
from core.domain.ledger import Entry
from core.store.ledger import entry_from_item
from core.store.models import AccountItem, EventItem, LedgerEntryItem
from core.store.tx import save_if, update_if


def account_ids(page_size: int = 100, property_ids: Collection[str] | None = None) -> Iterator[str]:
    """Every account's id (a Scan); with `property_ids`, those properties' only (filtered)."""
    condition = AccountItem.property_id.is_in(*property_ids) if property_ids else None
    for item in AccountItem.scan(condition, attributes_to_get=["account_id"], page_size=page_size):
        yield item.account_id


@dataclass(frozen=True)
class Subject:
    """An account as the audit sees it."""

    account_id: str
    property_id: str
    balance: int
    version: int
    checkpoint: Checkpoint


_ATTRS = ["account_id", "property_id", "balance", "version", "audit_seq", "audit_balance", "audit_posted_at"]


def _subject(item: AccountItem) -> Subject:
    checkpoint = Checkpoint()
    if item.audit_seq is not None:
        checkpoint = Checkpoint(int(item.audit_seq), int(item.audit_balance or 0), item.audit_posted_at or "")
    return Subject(item.account_id, item.property_id, int(item.balance), int(item.version), checkpoint)


def subjects(account_ids: Iterable[str]) -> dict[str, Subject]:
    """Consistent batch read (100 keys a request) of the accounts that exist."""
    ids = list(dict.fromkeys(account_ids))
    if not ids:
        return {}
    items = AccountItem.batch_get(ids, consistent_read=True, attributes_to_get=_ATTRS)
    return {i.account_id: _subject(i) for i in items}


def subject(account_id: str) -> Subject | None:
    try:
        return _subject(AccountItem.get(account_id, consistent_read=True, attributes_to_get=_ATTRS))
    except AccountItem.DoesNotExist:
        return None


def entries_after(account_id: str, checkpoint: Checkpoint) -> list[Entry]:
    """The account's entries posted after the checkpoint's entry, in posted_at order."""
    condition = LedgerEntryItem.posted_at > checkpoint.posted_at if checkpoint.posted_at else None
    items = LedgerEntryItem.by_time.query(account_id, range_key_condition=condition, consistent_read=True,
                                          scan_index_forward=True)
    return [entry_from_item(i) for i in items]


def advance(account_id: str, old: Checkpoint, new: Checkpoint, at: str) -> bool:
    """Move the checkpoint from `old` to `new`; False if another audit moved it meanwhile."""
    was = AccountItem.audit_seq == old.seq
    if old.seq == 0:
        was = AccountItem.audit_seq.does_not_exist() | was
    return update_if(
        AccountItem(account_id),
        [
            AccountItem.audit_seq.set(new.seq),
            AccountItem.audit_balance.set(new.balance),
            AccountItem.audit_posted_at.set(new.posted_at),
            AccountItem.audit_at.set(at),
        ],
        AccountItem.account_id.exists() & was,
    )


def record_mismatch(account_id: str, property_id: str, key: str, at: str, message: str, data: dict) -> bool:
    """An open `ledger_audit` event on the account, once per key (a repeated audit of the
    same problem adds nothing). True if it is new."""
    return save_if(
        EventItem(f"account#{account_id}", f"ledger_audit:{key}", property_id=property_id, at=at,
                  type="ledger_audit", status="open", message=message, data=data),
        EventItem.event_id.does_not_exist(),
    )

