"""What month-end reads that no other store module offers (docs/billing.md "Month-end at scale").

Every property: a Scan of the directory table for the property items (`sk = PROPERTY`),
projecting the property id only. It reads the whole directory table (rooms included) once
a month, which at 20,000 rooms is a few MB: cheaper than keeping a list of properties in
step with every property created. A draft bill confirmed and issued in one write. A
building's accounts with their ledger states, read at once.
"""

from __future__ import annotations

from core.domain.bills import DRAFT, ISSUED, issued_event
from core.domain.directory import Account
from core.domain.ledger import AccountState
from core.store import bills
from core.store.ledger import account_details
from core.store.models import AccountItem, BillItem, DirectoryItem

PROPERTY_SK = "PROPERTY"  # core/store/directory.py's key of a property item


def property_ids(page_size: int = 1000) -> list[str]:
    """Every property's id, sorted."""
    return sorted(i.property_id for i in DirectoryItem.scan(DirectoryItem.sk == PROPERTY_SK,
                                                            attributes_to_get=["property_id"], page_size=page_size))


def issue_draft(account_id: str, period: str, actor: str, at: str, due: str, property_id: str) -> bool:
    """A draft bill with something on it, confirmed and issued by `actor` in one write (the
    key formats are core/store/bills.py's) with its `bill_issued` event; its due date kept,
    else `due`. False if the bill is not a draft with a total above 0 (absent, confirmed,
    issued, empty)."""
    header = BillItem(account_id, bills.bill_sk(period))
    actions = [BillItem.state.set(ISSUED), BillItem.list_key.set(bills.list_key(ISSUED, period, account_id)),
               BillItem.confirmed_at.set(at), BillItem.confirmed_by.set(actor), BillItem.issued_at.set(at),
               BillItem.issued_by.set(actor), BillItem.updated_at.set(at),
               BillItem.due_date.set(BillItem.due_date | due)]
    return bills.issue_with_event(header, actions, (BillItem.state == DRAFT) & (BillItem.total > 0),
                                  issued_event(account_id, period, property_id, at, actor))


def building_accounts(property_id: str, building_id: str) -> list[tuple[Account, AccountState]]:
    """A building's accounts, each with its ledger state, from one consistent read of the
    items (the index Query, then BatchGetItems of 100): month-end's postings plan on these
    states instead of reading each account again before its transaction."""
    return account_details([i.account_id for i in AccountItem.by_building.query(f"{property_id}#{building_id}")])
