"""Common-area apportionment (公摊, docs/billing.md "Common-area apportionment"): groups
configured by a property's admins, and per (group, period) a run: preview -> approve ->
posted. Rules in core/domain/apportion.py, items in core/store/apportion.py.

- Usage comes from the monthly usage aggregates (core/store/usage.py), which hold every
  cloud-rated meter's quantity per band per local month: the master's own cells, and each
  member's sub-meters' (or, for a member without listed sub-meters, its open account's
  meters of the master's utility). One month item per account involved; nothing is added
  to the reading's transaction (bench/ingest.py is untouched).
- A preview stores its result under the run id "<group_id>:<period>" at a new revision;
  approval names that revision (an edit of the group or a newer preview since makes it
  stale: 409), is written to the action log, then every share with a tenant's account is
  applied through core.services.bills.apply_charges (idempotent per charge id) and the run
  is marked posted. A crash between the two leaves the run approved; approving again
  (or `post`) re-applies every charge, which changes nothing for those already applied,
  and then marks it posted.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from core.domain import apportion as rules
from core.domain import usage as usage_rules
from core.domain.admins import AdminPrincipal
from core.domain.apportion import Group, Result, RoomInput, Run
from core.domain.charges import Charge
from core.domain.clock import Clock, utcnow
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import ACCOUNT_OPEN, format_time
from core.domain.naming import id_problem
from core.services import action_log
from core.services import tariffs as tariff_service
from core.store import apportion as store
from core.store import directory as dstore
from core.store import meters as mstore
from core.store import usage as usage_store

NOT_FOUND = "公摊组不存在"
STALE_GROUP = "公摊组已被他人修改，请刷新页面后重试"
STALE_PREVIEW = "试算结果已更新（公摊组被修改或有人重新试算），请查看最新试算后再审批"

Apply = Callable[[Iterable[Charge]], object]


def _apply_charges(charges: Iterable[Charge], actor: str) -> object:
    from core.services import bills  # another area's service (docs/billing.md); imported when posting

    return bills.apply_charges(list(charges), actor=actor)


# --- groups ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupView:
    group: Group
    master_kind: str  # electricity | water
    last_run: Run | None


def groups(property_id: str) -> list[GroupView]:
    out = []
    kinds = {m.meter_id: m.kind for m in mstore.monitor_meters(property_id)}
    for g in store.groups(property_id):
        runs = store.runs(property_id, g.group_id)
        out.append(GroupView(g, usage_rules.utility(kinds.get(g.master_meter, "")), runs[0] if runs else None))
    return out


def group(property_id: str, group_id: str) -> Group:
    g = None if id_problem(group_id) else store.get_group(property_id, group_id)
    if g is None:
        raise NotFound(NOT_FOUND, code="apportion_group_not_found")
    return g


def _check_refs(g: Group) -> None:
    """The master and sub-meters are this property's meters of one utility, the master is
    rated by the cloud with a plan, and every member is a room of the property."""
    master = dstore.get_meter(g.master_meter)
    if master is None or master.property_id != g.property_id or master.retired:
        raise ValidationError(f"总表 {g.master_meter} 不存在或已停用", code="master_meter_not_found", field="master_meter")
    if str(master.billing_mode) != "cloud" or not master.plan_id:
        raise ValidationError("总表必须由平台计量并已设置电价方案（按总表的电价计算公摊金额）",
                              code="master_meter_unrated", field="master_meter")
    utility = usage_rules.utility(str(master.kind))
    meters = {m.meter_id: m for m in mstore.monitor_meters(g.property_id)}
    for s in g.sub_meters:
        m = meters.get(s)
        if m is None:
            raise ValidationError(f"分表 {s} 不存在", code="sub_meter_not_found", field="members")
        if usage_rules.utility(m.kind) != utility:
            raise ValidationError(f"分表 {s} 与总表的类型不同（电表与水表不能混合分摊）", code="sub_meter_kind_mismatch",
                                  field="members")
    _, _, _, rooms = dstore.property_tree(g.property_id)
    known = {f"{r.building_id}/{r.room_id}" for r in rooms}
    for m in g.members:
        if m.key not in known:
            raise ValidationError(f"房间 {m.key} 不存在", code="room_not_found", field="members")


def save_group(who: AdminPrincipal, property_id: str, doc: object, *, group_id: str | None = None,
               expected_version: int = 0, ip: str = "", clock: Clock = utcnow) -> Group:
    """Create a group (group_id None) or change one (at expected_version, the version the
    admin edited). Refused with a clear message: bad settings, unknown meters or rooms, a
    room already in another group of the same master; 409 if changed meanwhile."""
    creating = group_id is None
    before = None
    if creating:
        group_id = f"g-{secrets.token_hex(5)}"
    else:
        before = group(property_id, group_id)
        if before.version != expected_version:
            raise Conflict(STALE_GROUP, code="apportion_group_stale")
    g = rules.parse_group(doc, property_id, group_id, expected_version + 1)
    _check_refs(g)
    rules.check_overlap(g, store.groups(property_id))
    at = format_time(clock())
    if not store.put_group(g, 0 if creating else expected_version, who.name, at):
        raise Conflict(STALE_GROUP, code="apportion_group_stale")
    action_log.record(who, rules.ACTION_CREATE if creating else rules.ACTION_UPDATE, property_id=property_id,
                      target=f"apportion:{group_id}", before=before.to_doc() if before else None,
                      after={**g.to_doc(), "members": len(g.members)} if len(g.members) > 50 else g.to_doc(), ip=ip)
    return g


# --- a period's inputs ---------------------------------------------------------------------------


class _Usage:
    """Month items of the accounts involved, each read once: `prefetch` reads many in
    BatchGetItems of 100 (a building's group in a few requests, not a Query per room)."""

    def __init__(self, period: str) -> None:
        self.day = rules.period_day(period)
        self.month = f"{self.day.year:04d}-{self.day.month:02d}"
        self.rows: dict[str, list] = {}

    def prefetch(self, account_ids: Iterable[str]) -> None:
        todo = [a for a in dict.fromkeys(account_ids) if a and a not in self.rows]
        if not todo:
            return
        found = usage_store.months_of_accounts(todo, self.month)
        for a in todo:
            row = found.get(a)
            self.rows[a] = list(row.cells) if row else []

    def cells(self, account_id: str) -> list:
        if account_id not in self.rows:
            self.rows[account_id] = [c for row in usage_store.months(account_id, self.day, self.day) for c in row.cells]
        return self.rows[account_id]

    def meter(self, account_id: str, meter_id: str, utility: str) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for c in self.cells(account_id):
            if c.meter_id == meter_id and c.kind == utility:
                out[c.band] = out.get(c.band, Decimal(0)) + c.quantity
        return out

    def account(self, account_id: str, utility: str, except_meter: str) -> Decimal:
        return sum((c.quantity for c in self.cells(account_id) if c.kind == utility and c.meter_id != except_meter),
                   Decimal(0))


class PropertyInputs:
    """What every group of a property reads alike (its meters, rooms, the paying account of
    each room), read once for all the groups computed with it: month-end previews every
    group of a property, and reading the whole property per group grew with groups x rooms."""

    def __init__(self, property_id: str) -> None:
        self.property_id = property_id
        self._meters: dict | None = None
        self._rooms: dict | None = None
        self._payers: dict[str, dict[str, str]] = {}  # building -> room key -> account

    def meters(self) -> dict:
        if self._meters is None:
            self._meters = {m.meter_id: m for m in mstore.monitor_meters(self.property_id)}
        return self._meters

    def rooms(self) -> dict:
        if self._rooms is None:
            _, _, _, rooms = dstore.property_tree(self.property_id)
            self._rooms = {f"{r.building_id}/{r.room_id}": r for r in rooms}
        return self._rooms

    def payers(self, buildings: set[str]) -> dict[str, str]:
        for b in sorted(buildings - self._payers.keys()):
            self._payers[b] = _payers(self.property_id, {b})
        return {k: v for b in buildings for k, v in self._payers[b].items()}


def _payers(property_id: str, buildings: set[str]) -> dict[str, str]:
    """room key -> the account that pays for it: its open account (the earliest opened, then
    the lowest id, when a room holds several)."""
    out: dict[str, tuple[str, str]] = {}
    for b in sorted(buildings):
        for a in dstore.accounts_of_building(property_id, b):
            if a.status != ACCOUNT_OPEN:
                continue
            key, rank = f"{a.building_id}/{a.room_id}", (a.opened_at, a.account_id)
            if key not in out or rank < out[key]:
                out[key] = rank
    return {k: v[1] for k, v in out.items()}


def compute(g: Group, period: str, inputs_of: PropertyInputs | None = None) -> Result:
    """Read a period's inputs and compute its shares (nothing is written). `inputs_of`: the
    property's meters, rooms and payers as read for an earlier group (else read now)."""
    master = dstore.get_meter(g.master_meter)
    if master is None or master.property_id != g.property_id or not master.plan_id:
        raise ValidationError("总表不存在或未设置电价方案", code="master_meter_unrated", field="master_meter")
    plan = tariff_service.plan(master.plan_id)
    utility = plan.utility
    if inputs_of is None or inputs_of.property_id != g.property_id:
        inputs_of = PropertyInputs(g.property_id)
    meters, room_of = inputs_of.meters(), inputs_of.rooms()
    payers = inputs_of.payers({m.building_id for m in g.members})
    usage = _Usage(period)
    usage.prefetch([master.account_id, *(payers.get(m.key, "") for m in g.members if not m.sub_meters),
                    *(meters[s].account_id for m in g.members for s in m.sub_meters if s in meters)])
    master_bands = usage.meter(master.account_id, master.meter_id, utility)
    inputs = []
    for m in g.members:
        room = room_of.get(m.key)
        account = payers.get(m.key)
        if m.sub_meters:
            used = Decimal(0)
            for s in m.sub_meters:
                found = meters.get(s)
                if found is not None and found.account_id:
                    used += sum(usage.meter(found.account_id, s, utility).values(), Decimal(0))
        else:
            used = usage.account(account, utility, master.meter_id) if account else Decimal(0)
        area = m.area_m2
        if area is None and room is not None and room.area_m2:
            area = Decimal(room.area_m2)
        inputs.append(RoomInput(m.building_id, m.room_id, room.name if room else m.room_id, account, area, used, m.ratio))
    return rules.compute(g, period, plan, master_bands, inputs)


# --- runs ----------------------------------------------------------------------------------------


def runs(property_id: str, group_id: str) -> list[Run]:
    group(property_id, group_id)
    return store.runs(property_id, group_id)


def run(property_id: str, group_id: str, period: object) -> Run:
    group(property_id, group_id)
    p = rules.parse_period(period)
    r = store.get_run(property_id, group_id, p)
    if r is None:
        raise NotFound(f"账期 {p} 尚未试算", code="apportion_run_not_found")
    return r


def preview(who: AdminPrincipal, property_id: str, group_id: str, period: object, clock: Clock = utcnow,
            inputs_of: PropertyInputs | None = None) -> Run:
    """Compute a period's shares and store them as the run's new revision (a period already
    approved or posted is not computed again: 409). `inputs_of`: see compute."""
    g = group(property_id, group_id)
    p = rules.check_preview_period(period, clock())
    current = store.get_run(property_id, group_id, p)
    if current is not None and current.status != rules.PREVIEWED:
        raise Conflict(f"账期 {p} 已审批（{current.status_text}），不能重新试算", code="apportion_run_decided")
    result = compute(g, p, inputs_of)
    if not store.put_preview(property_id, group_id, result, current.rev if current else 0, who.name,
                             format_time(clock())):
        raise Conflict("该账期刚被他人试算或审批，请刷新后重试", code="apportion_run_stale")
    found = store.get_run(property_id, group_id, p)
    assert found is not None
    return found


def approve(who: AdminPrincipal, property_id: str, group_id: str, period: object, rev: object, *, ip: str = "",
            clock: Clock = utcnow, apply: Callable[[Iterable[Charge], str], object] = _apply_charges) -> Run:
    """Approve the preview at revision `rev` and post its charges. Approving a run that is
    approved but not yet posted (an earlier posting stopped midway) finishes its posting;
    a posted run is returned as it is."""
    g = group(property_id, group_id)
    r = run(property_id, group_id, period)
    if r.status == rules.POSTED:
        return r
    if r.status == rules.PREVIEWED:
        if isinstance(rev, bool) or not isinstance(rev, int):
            raise ValidationError("rev 必须是所审批的试算版本（整数）", code="rev_required", field="rev")
        if rev != r.rev or r.result.group_version != g.version:
            raise Conflict(STALE_PREVIEW, code="apportion_preview_stale")
        rules.check_approvable(r.period, clock())
        at = format_time(clock())
        if not store.approve(property_id, group_id, r.period, rev, who.name, at):
            again = store.get_run(property_id, group_id, r.period)
            if again is None or again.status == rules.PREVIEWED:
                raise Conflict(STALE_PREVIEW, code="apportion_preview_stale")
        action_log.record(who, rules.ACTION_APPROVE, property_id=property_id, target=f"apportion:{group_id}",
                          before={"period": r.period, "rev": r.rev},
                          after={"status": rules.APPROVED, "amount": r.result.amount,
                                 "posted_total": r.result.posted_total, "owner_total": r.result.owner_total,
                                 "shares": len(r.result.shares), "loss_ratio_pct": str(r.result.loss_ratio_pct)},
                          ip=ip, record_id=f"apportion:{group_id}:{r.period}")
    return post(who, property_id, group_id, r.period, clock=clock, apply=apply)


def post(who: AdminPrincipal, property_id: str, group_id: str, period: str, *, clock: Clock = utcnow,
         apply: Callable[[Iterable[Charge], str], object] = _apply_charges) -> Run:
    """Apply an approved run's charges (each idempotent by its id) and mark it posted."""
    g = group(property_id, group_id)
    r = run(property_id, group_id, period)
    if r.status == rules.POSTED:
        return r
    if r.status != rules.APPROVED:
        raise Conflict("该账期尚未审批", code="apportion_run_not_approved")
    apply(rules.charges(g, r.result), f"admin:{who.admin_id}")
    if not store.mark_posted(property_id, group_id, r.period, format_time(clock())):
        again = store.get_run(property_id, group_id, r.period)
        if again is None or again.status != rules.POSTED:
            raise Conflict("入账状态异常，请刷新后重试", code="apportion_run_stale")
    found = store.get_run(property_id, group_id, r.period)
    assert found is not None
    return found


# --- what the console's form offers ----------------------------------------------------------------


@dataclass(frozen=True)
class Choices:
    rooms: list  # directory Rooms of the property, by building and room
    meters: list  # (meter_id, utility, account_id) of the property's meters in service


def choices(property_id: str) -> Choices:
    _, _, _, rooms = dstore.property_tree(property_id)
    meters = [(m.meter_id, usage_rules.utility(m.kind), m.account_id)
              for m in sorted(mstore.monitor_meters(property_id), key=lambda m: m.meter_id) if not m.retired]
    return Choices(sorted(rooms, key=lambda r: (r.building_id, r.room_id)), meters)
