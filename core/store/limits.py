"""Rate-limit counters (docs/tenant-auth.md, "Limits"): table `rate_limits`, one item per
rule, subject and fixed window, shared by every Lambda instance."""

from __future__ import annotations

from datetime import UTC, datetime

from core.store.models import RateCounterItem
from core.store.tx import connection, retrying


def hit(counter_key: str, purge_at: int) -> int:
    """Add one to a counter and answer its new value: one UpdateItem (ADD, read back with
    ReturnValues). A retry after a lost answer may count a hit twice: a limit errs on the
    strict side, and the window ends soon."""
    item = RateCounterItem(counter_key)
    kwargs = item.get_update_kwargs_from_instance(
        actions=[RateCounterItem.hits.add(1), RateCounterItem.purge_at.set(datetime.fromtimestamp(purge_at, UTC))], add_version_condition=False)
    kwargs["ReturnValues"] = "UPDATED_NEW"
    response = retrying(lambda: connection().dispatch("UpdateItem", dict(kwargs)))
    return int(response["Attributes"]["hits"]["N"])
