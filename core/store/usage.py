"""Usage aggregates: one item per (account, local day) and one per (account, local month)
in the `usage` table (core/domain/usage.py has the rules).

Key formats (known only here): `period` = `day#YYYY-MM-DD` | `month#YYYY-MM`. Flat number
attributes, created by the first ADD that names them (names go through
ExpressionAttributeNames, so any meter id is safe):

- `q#<kind>#<meter_id>#<band>`: quantity (exact decimal: kWh or m³), ADDed
- `f#<kind>#<meter_id>#<band>`: cost in fen, ADDed

A reading adds to two items (its day and its month) inside the transaction that rates it,
so the aggregates move exactly with the ledger. Reads are one Query of an account's
partition (a range of days, or of months) or one GetItem (today), decoded from the raw
answer: pynamodb drops attributes a model does not declare.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER
from pynamodb.expressions.operand import Path, Value

from core.domain.usage import Cell, Row, Usage, month_of
from core.store.models import UsageItem
from core.store.tx import Tx

DAY, MONTH = "day#", "month#"


class ExactNumber(Attribute[Decimal]):
    """A DynamoDB number written from a Decimal exactly (NumberAttribute goes through json: floats)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        # normalized: "0" rather than "0.000000000" (DynamoDB keeps numbers normalized; the
        # local emulator stored that zero as "0E-9" and then failed every later ADD to it)
        return format(value.normalize(), "f")

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


_NUMBER = ExactNumber()


def day_key(d: date) -> str:
    return f"{DAY}{d.isoformat()}"


def month_key(month: str) -> str:
    return f"{MONTH}{month}"


def _adds(u: Usage) -> list:
    actions = []
    for b in u.bands:
        actions.append(Path([f"q#{u.kind}#{u.meter_id}#{b.band}"]).add(Value(b.quantity, attribute=_NUMBER)))
        actions.append(Path([f"f#{u.kind}#{u.meter_id}#{b.band}"]).add(Value(Decimal(b.fen), attribute=_NUMBER)))
    return actions


def add_usage(tx: Tx, u: Usage, tag: str) -> None:
    """The two updates of a reading's usage: its day's item and its month's."""
    tx.update(UsageItem(u.account_id, day_key(u.day)), _adds(u), tag=tag)
    tx.update(UsageItem(u.account_id, month_key(u.month)), _adds(u), tag=tag)


# --- reading ---------------------------------------------------------------------------------


def _row(item: dict) -> Row:
    period = item["period"]["S"].split("#", 1)[1]
    cells: dict[tuple[str, str, str], list] = {}
    for name, value in item.items():
        parts = name.split("#")
        if len(parts) == 4 and parts[0] in ("q", "f") and "N" in value:
            slot = cells.setdefault((parts[1], parts[2], parts[3]), [Decimal(0), 0])
            if parts[0] == "q":
                slot[0] = Decimal(value["N"])
            else:
                slot[1] = int(Decimal(value["N"]))
    return Row(period, tuple(Cell(k, m, b, q, f) for (k, m, b), (q, f) in sorted(cells.items())))


def _query(account_id: str, low: str, high: str) -> list[Row]:
    """One Query of the account's partition between two period keys (DynamoDB pages past
    1 MB; a range the service allows is far below that)."""
    conn, start, rows = UsageItem._get_connection(), None, []
    while True:
        page = conn.query(account_id, range_key_condition=UsageItem.period.between(low, high),
                          exclusive_start_key=start)
        rows += [_row(i) for i in page.get("Items", ())]
        start = page.get("LastEvaluatedKey")
        if not start:
            return rows


def days(account_id: str, first: date, last: date) -> list[Row]:
    """The account's day items from first to last (inclusive); days without usage have none."""
    return _query(account_id, day_key(first), day_key(last))


def months(account_id: str, first: date, last: date) -> list[Row]:
    """The account's month items of the months from first's to last's (inclusive)."""
    return _query(account_id, month_key(month_of(first)), month_key(month_of(last)))


def day(account_id: str, d: date) -> Row | None:
    """One day's item (GetItem), None if nothing was used that day."""
    answer = UsageItem._get_connection().get_item(account_id, day_key(d))
    item = answer.get("Item")
    return _row(item) if item else None
