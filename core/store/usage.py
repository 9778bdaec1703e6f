"""Usage aggregates: one item per (account, local day) and one per (account, local month)
in the `usage` table (core/domain/usage.py has the rules).

Key formats (known only here): `period` = `day#YYYY-MM-DD` | `month#YYYY-MM`. Flat number
attributes, created by the first ADD that names them (names go through
ExpressionAttributeNames, so any meter id is safe):

- `q#<kind>#<meter_id>#<band>`: quantity (exact decimal: kWh or m³), ADDed
- `f#<kind>#<meter_id>#<band>`: cost in fen, ADDed

A reading adds to two items (its day and its month) inside the transaction that rates it,
so the aggregates move exactly with the ledger.

The same items are the account's **report summary** (docs/reports.md): every posting adds,
in its own transaction (core/store/ledger.py), to the items of its posted day and month:

- `m#<raw key>`: fen posted, by money key (core/domain/reports.py `money_key`), ADDed
- `b#<raw key>`: fen put on a bill (bill lines, core/store/bills.py), ADDed; `m#bill_payment`
  for bill payments
- `ob`: the balance before the period's first posting (SET if absent), `cb`: after its last
  (SET; postings of one account are serialised by its version, so the last SET is the last)
- `v`: ADDed 1 by every write of the item, usage included: the version the rollup consumer
  (core/store/rollups.py) orders copies by

One transaction never names an item twice: `Summary` gathers every change of a transaction
per item and writes each item once. Reads are one Query of an account's
partition (a range of days, or of months) or one GetItem (today), decoded from the raw
answer: pynamodb drops attributes a model does not declare.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER
from pynamodb.expressions.operand import Path, Value

from core.domain.ledger import Entry
from core.domain.reports import money_key
from core.domain.usage import Cell, Row, Usage, local_day, month_of
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


def _num(value: Decimal | int) -> Value:
    return Value(Decimal(value), attribute=_NUMBER)


class Summary:
    """The changes one transaction makes to summary items, gathered per item (DynamoDB
    refuses a transaction that names an item twice), then written once each by `flush`."""

    def __init__(self) -> None:
        self._adds: dict[tuple[str, str], dict[str, Decimal]] = {}
        self._sets: dict[tuple[str, str], dict[str, tuple[Decimal, bool]]] = {}  # name -> (value, only if absent)

    def _keys(self, account_id: str, d: date) -> list[tuple[str, str]]:
        return [(account_id, day_key(d)), (account_id, month_key(month_of(d)))]

    def _add(self, keys: list[tuple[str, str]], name: str, value: Decimal | int) -> None:
        for k in keys:
            slot = self._adds.setdefault(k, {})
            slot[name] = slot.get(name, Decimal(0)) + Decimal(value)

    def _touch(self, keys: list[tuple[str, str]]) -> None:
        for k in keys:
            self._adds.setdefault(k, {})

    def usage(self, u: Usage) -> None:
        keys = self._keys(u.account_id, u.day)
        self._touch(keys)
        for b in u.bands:
            self._add(keys, f"q#{u.kind}#{u.meter_id}#{b.band}", b.quantity)
            self._add(keys, f"f#{u.kind}#{u.meter_id}#{b.band}", b.fen)

    def posting(self, e: Entry) -> None:
        """A ledger entry: its money key and the balance before and after, on its posted day."""
        keys = self._keys(e.account_id, local_day(datetime.fromisoformat(e.posted_at)))
        self._touch(keys)
        key = money_key(str(e.kind), e.entry_id, e.cause, e.amount)
        if key is not None and e.amount:
            self._add(keys, f"m#{key}", abs(e.amount))
        for k in keys:
            sets = self._sets.setdefault(k, {})
            if "ob" not in sets:
                sets["ob"] = (Decimal(e.balance_after - e.amount), True)
            sets["cb"] = (Decimal(e.balance_after), False)

    def money(self, account_id: str, at: str, name: str, fen: int) -> None:
        """fen under `name` (b#<raw key>, m#bill_payment) on the local day of `at`."""
        keys = self._keys(account_id, local_day(datetime.fromisoformat(at)))
        self._touch(keys)
        if fen:
            self._add(keys, name, fen)

    def flush(self, tx: Tx, tag: str) -> None:
        for (account_id, period), adds in self._adds.items():
            actions = [Path([name]).add(_num(value)) for name, value in adds.items()]
            for name, (value, if_absent) in self._sets.get((account_id, period), {}).items():
                p = Path([name])
                actions.append(p.set(p | _num(value)) if if_absent else p.set(_num(value)))
            actions.append(Path(["v"]).add(_num(1)))
            tx.update(UsageItem(account_id, period), actions, tag=tag)
        self._adds, self._sets = {}, {}


def add_usage(tx: Tx, u: Usage, tag: str) -> None:
    """The two updates of a reading's usage: its day's item and its month's."""
    s = Summary()
    s.usage(u)
    s.flush(tx, tag)


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


def months_of_accounts(account_ids: list[str], month: str) -> dict[str, Row]:
    """Each account's item for `month` ("YYYY-MM"), by account id (absent: nothing used), in
    consistent BatchGetItems of 100 keys: a building's month in a few requests, not one Query
    per room (month-end's apportionment previews)."""
    from core.store.batch_read import batch_get

    table, key = UsageItem.Meta.table_name, month_key(month)
    found = batch_get([(table, {"account_id": {"S": a}, "period": {"S": key}}) for a in dict.fromkeys(account_ids)])
    return {item["account_id"]["S"]: _row(item) for _, item in found}
