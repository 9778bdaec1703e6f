from __future__ import annotations

from collections.abc import Iterator

from core.store.models import AccountItem


def account_ids(page_size: int = 100) -> Iterator[str]:
    for item in AccountItem.scan(attributes_to_get=["account_id"], page_size=page_size):
        yield item.account_id
