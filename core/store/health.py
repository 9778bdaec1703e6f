from __future__ import annotations

from core.store.models import AccountItem


def ping() -> None:
    """One cheap request to the accounts table; raises if DynamoDB does not answer."""
    AccountItem.describe_table()
