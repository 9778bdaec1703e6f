"""The room monitor's rules (房间监控): what state a room's tile is in, which filter chips
it answers to, and whether it matches a search. Pure: the store hands over snapshots,
core/services/monitor.py assembles them, the console renders the tiles.

State precedence, most urgent first: cut > arrears > offline > low (alarm level 1..n by
the account's alarm amounts) > protected (keep-supply) > normal. A room without an open
account is vacant. A room holding several open accounts shows one tile per account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.domain.control import CUT_DONE, DEFAULT_LEVELS
from core.domain.ledger import ACCOUNT_OPEN

# tile states
CUT, ARREARS, OFFLINE, LOW, PROTECTED, NORMAL, VACANT = "cut", "arrears", "offline", "low", "protected", "normal", "vacant"
STATES = (CUT, ARREARS, OFFLINE, LOW, PROTECTED, NORMAL, VACANT)
STATE_LABELS = {CUT: "已断电", ARREARS: "欠费", OFFLINE: "离线", LOW: "余额不足", PROTECTED: "保电", NORMAL: "正常",
                VACANT: "空置"}

# filter chips (any of the chosen ones matches: a cut room in arrears shows under both)
FILTERS = (ARREARS, CUT, OFFLINE, LOW, VACANT)
FILTER_LABELS = {ARREARS: "欠费", CUT: "已断电", OFFLINE: "离线", LOW: "余额不足", VACANT: "空置"}

# relay state as last read back, summed over an account's meters
RELAY_CLOSED, RELAY_OPEN, RELAY_UNKNOWN = "closed", "open", "unknown"
RELAY_LABELS = {RELAY_CLOSED: "合闸", RELAY_OPEN: "分闸", RELAY_UNKNOWN: "未知"}

MAX_QUERY = 50


@dataclass(frozen=True)
class AccountSnapshot:
    """What the monitor knows about an account (balance from the balance index)."""

    account_id: str
    building_id: str
    room_id: str
    tenant_id: str
    name: str
    status: str
    balance: int
    overdraft_limit: int = 0
    keep_supply: bool = False
    cut_state: str = "none"
    alarm_levels: tuple[int, ...] | None = None


@dataclass(frozen=True)
class MeterSnapshot:
    meter_id: str
    account_id: str
    kind: str
    relay_state: str  # as last read back: closed / open / unknown
    online: bool
    keep_supply: bool = False
    in_flight: bool = False  # an outstanding relay command (TRIP / CLOSE not yet confirmed)
    retired: bool = False


@dataclass(frozen=True)
class RoomRef:
    building_id: str
    floor_id: str
    room_id: str
    name: str


@dataclass(frozen=True)
class Tile:
    room: RoomRef
    state: str
    account_id: str | None = None
    account_name: str = ""
    tenant_name: str = ""
    phone: str = ""
    balance: int | None = None
    alarm_level: int = 0  # 1..n when below the n-th alarm amount
    relay: str = RELAY_UNKNOWN
    in_flight: bool = False
    online: bool | None = None  # None: no meter
    meters: int = 0
    flags: frozenset[str] = field(default_factory=frozenset)  # the filter chips it answers to
    protected: bool = False

    @property
    def label(self) -> str:
        if self.state == LOW:
            return f"{STATE_LABELS[LOW]} {self.alarm_level} 级"
        return STATE_LABELS[self.state]


def alarm_level(balance: int, levels: Iterable[int] | None) -> int:
    """How many of the account's alarm amounts (fen, highest first) the balance is below:
    0 above them all, 1 below the first, ... n below the n-th."""
    return sum(1 for threshold in (tuple(levels) if levels else DEFAULT_LEVELS) if balance < threshold)


def relay_summary(meters: Iterable[MeterSnapshot]) -> str:
    """open if any meter reads back open (its supply is off), closed if all read back
    closed, otherwise (no meter, or one not read back yet) unknown."""
    states = [m.relay_state for m in meters]
    if RELAY_OPEN in states:
        return RELAY_OPEN
    if states and all(s == RELAY_CLOSED for s in states):
        return RELAY_CLOSED
    return RELAY_UNKNOWN


def account_tile(room: RoomRef, account: AccountSnapshot, meters: Iterable[MeterSnapshot], tenant_name: str = "",
                 phone: str = "") -> Tile:
    active = [m for m in meters if not m.retired]
    relay = relay_summary(active)
    level = alarm_level(account.balance, account.alarm_levels)
    online = all(m.online for m in active) if active else None
    protected = account.keep_supply or any(m.keep_supply for m in active)
    flags = set()
    if account.cut_state == CUT_DONE or relay == RELAY_OPEN:
        flags.add(CUT)
    if account.balance < 0:
        flags.add(ARREARS)
    if online is False:
        flags.add(OFFLINE)
    if account.balance >= 0 and level > 0:
        flags.add(LOW)
    state = next((s for s in (CUT, ARREARS, OFFLINE, LOW) if s in flags), PROTECTED if protected else NORMAL)
    return Tile(room=room, state=state, account_id=account.account_id, account_name=account.name,
                tenant_name=tenant_name, phone=phone, balance=account.balance,
                alarm_level=level if LOW in flags else 0, relay=relay, in_flight=any(m.in_flight for m in active),
                online=online, meters=len(active), flags=frozenset(flags), protected=protected)


def vacant_tile(room: RoomRef) -> Tile:
    return Tile(room=room, state=VACANT, flags=frozenset({VACANT}))


def room_tiles(room: RoomRef, accounts: Iterable[AccountSnapshot], meters_of: dict[str, list[MeterSnapshot]],
               people: dict[str, tuple[str, str]]) -> list[Tile]:
    """The tiles of one room: one per open account (by account id), or one vacant tile.
    people: tenant_id -> (name, phone)."""
    tiles = []
    for a in sorted((a for a in accounts if a.status == ACCOUNT_OPEN), key=lambda a: a.account_id):
        name, phone = people.get(a.tenant_id, ("", ""))
        tiles.append(account_tile(room, a, meters_of.get(a.account_id, ()), name, phone))
    return tiles or [vacant_tile(room)]


def parse_filters(values: Iterable[str]) -> frozenset[str]:
    """The chosen filter chips; unknown names are an error for the caller to report."""
    chosen = frozenset(v for v in values if v)
    unknown = chosen - set(FILTERS)
    if unknown:
        raise ValueError(sorted(unknown))
    return chosen


def normalise_query(q: str | None) -> str:
    return " ".join((q or "").split()).casefold()


def matches(tile: Tile, filters: frozenset[str], query: str) -> bool:
    """filters: any chosen chip (none chosen: all tiles); query (normalised): a substring of
    the room's name or id, the tenant's name or the phone number."""
    if filters and not filters & tile.flags:
        return False
    if not query:
        return True
    haystack = (tile.room.name, tile.room.room_id, tile.tenant_name, tile.phone, tile.account_name)
    return any(query in h.casefold() for h in haystack if h)
