"""Uplink messages from bridges: readings are rated and billed, command results applied.

One DynamoDB transaction per reading in the common case: the ledger entry, the account's
new balance (with any alarm or cut-off state change and its recent daily costs), the
meter's new baseline and the account's day and month usage aggregates (core/domain/usage.py)
are written together, planned against states this process remembers and conditioned on
them, so a duplicate or a stale memory costs a retry, never a wrong or double charge.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from aws_lambda_powertools import Logger
from cachetools import LRUCache

from core.domain import rating as rules
from core.domain import usage as usage_rules
from core.domain.clock import Clock, utcnow
from core.domain.errors import AccountClosed, ConditionFailed, Conflict, IdempotencyConflict, NotFound, WriteRefused
from core.domain.events import Event, Subject
from core.domain.ledger import AccountState, Entry, EntryKind, PostingRequest, format_time
from core.domain.meters import MeterState, MeterUpdate
from core.domain.rating import Baseline, MeterReading, Verdict
from core.domain.tariff import Charge, Plan, RatingCarry
from core.domain.usage import Usage
from core.domain.writes import AddEvent, AddUsage, DecideEvent, MoveCarry, Write, meter_refused
from core.protocol import messages
from core.services import observability, tariffs
from core.services.cache import state_cache
from core.services.control import Control
from core.services.ledger import LedgerService
from core.store import events as events_store
from core.store import meters as meters_store
from core.store import unit as unit_store

log = Logger(service="feikong", child=True)


class Ingest:
    def __init__(self, ledger: LedgerService | None = None, clock: Clock = utcnow,
                 max_gap: timedelta | None = None, max_skew: timedelta | None = None,
                 cache_size: int | None = None, *, control: Control | None = None, meters=meters_store,
                 events=events_store, unit=unit_store, plans: Callable[[str], Plan] = tariffs.plan) -> None:
        self.ledger = ledger or (control.ledger if control else LedgerService(clock=clock, cache_size=cache_size))
        self.control = control or Control(self.ledger, clock)
        self.clock = clock
        self.meters, self.events, self.unit, self.plans = meters, events, unit, plans
        default_gap, default_skew = tariffs.rating_limits()
        self.max_gap = max_gap or default_gap
        self.max_skew = max_skew if max_skew is not None else default_skew
        # meters used most recently (bounded: FEIKONG_STATE_CACHE_SIZE)
        self._meters: LRUCache[str, MeterState] = state_cache(cache_size)
        self._lock = threading.Lock()

    # -- messages --------------------------------------------------------------------

    def handle(self, body: str) -> dict:
        """One uplink message. Raises on a transient failure (the queue redelivers);
        a forged or malformed message is refused and recorded, never retried."""
        try:
            msg = messages.decode(body)
        except messages.BadMessage as e:
            log.warning("uplink message refused", reason=e.message)
            return {"refused": e.message}
        s = self.control.sites(msg["site_id"])
        if s is None or not messages.verify_any(msg, s.keys()):
            self._security_event(msg, s)
            return {"refused": "signature"}
        kind = msg["type"]
        if kind == "readings":
            return self.readings(msg)
        if kind == "command_result":
            self.control.command_result(msg)
            return {"command_result": msg.get("command_id")}
        if kind == "meter_event":
            self._meter_event(msg, s.property_id)
        if kind == "heartbeat":  # the site's last heartbeat, for the console (core/services/site_status.py)
            from core.services import site_status

            site_status.record_heartbeat(msg, self.clock())
        return {kind: "recorded"}

    def _security_event(self, msg: dict, s) -> None:
        log.error("uplink message with a bad signature or unknown site", site_id=msg.get("site_id"),
                  message_id=msg.get("message_id"))
        if s is not None:
            self.events.put_event(Event(
                Subject.site(s.site_id), f"forged:{msg.get('message_id')}", "security", s.property_id,
                format_time(self.clock()), message="收到签名无效的网关消息",
                data={"message_id": str(msg.get("message_id"))},
            ))

    def _meter_event(self, msg: dict, property_id: str) -> None:
        meter_id = str(msg.get("meter_id", ""))
        m = self._meter(meter_id)
        if m is None or m.site_id != msg["site_id"]:
            return
        self.events.put_event(Event(
            Subject.meter(meter_id), f"bridge:{msg['message_id']}", "meter_event", property_id,
            format_time(self.clock()), message=str(msg.get("event", ""))[:200],
            data={"detail": str(msg.get("detail", ""))[:1000]},
        ))

    def readings(self, msg: dict) -> dict:
        counts: dict[str, int] = {}
        raw = msg.get("readings")
        if not isinstance(raw, list):
            raise messages.BadMessage("readings must be a list")
        for item in raw:
            try:
                reading = messages.parse_reading(item)
            except messages.BadMessage as e:
                log.warning("reading refused", reason=e.message, site_id=msg["site_id"])
                counts["refused"] = counts.get("refused", 0) + 1
                continue
            result = self.reading(msg["site_id"], reading)
            counts[result] = counts.get(result, 0) + 1
            observability.count("ReadingsRated", result == "billed")  # counted as it lands (a later one may raise)
        return counts

    # -- one reading -------------------------------------------------------------------

    def _meter(self, meter_id: str, fresh: bool = False) -> MeterState | None:
        with self._lock:
            m = None if fresh else self._meters.get(meter_id)
        if m is None:
            m = self.meters.load_meter(meter_id)
            if m is not None:
                with self._lock:
                    self._meters[meter_id] = m
        return m

    def _remember(self, m: MeterState) -> None:
        with self._lock:
            self._meters[m.meter_id] = m

    def reading(self, site_id: str, r: MeterReading) -> str:
        m = self._meter(r.meter_id)
        closed = False  # the meter's account is closed (moved out, no new tenant yet)
        for _ in range(20):
            if m is None or m.site_id != site_id or m.retired:
                log.warning("reading for an unknown, retired or another site's meter", meter_id=r.meter_id,
                            site_id=site_id)
                return "refused"
            try:
                return self._once(m, r, closed=closed)
            except AccountClosed:
                # our memory of the meter may predate a transfer (过户) to a new account:
                # look again; if it still belongs to the closed account, the usage is
                # recorded unbilled for an admin (docs/billing.md, "Move-in, move-out and transfer")
                fresh = self._meter(r.meter_id, fresh=True)
                closed = fresh is not None and fresh.account_id == m.account_id
                m = fresh
            except WriteRefused as e:  # the meter moved on elsewhere: look again
                found = meter_refused(e.refused)
                m = found.current if found is not None and found.current is not None else self._meter(r.meter_id,
                                                                                                     fresh=True)
                self._remember(m)
            except _StaleMeter as e:
                m = e.meter
                self._remember(m)
        raise RuntimeError(f"reading {r.meter_id}:{r.seq} could not be applied")

    def _once(self, m: MeterState, r: MeterReading, closed: bool = False) -> str:
        now = self.clock()
        # the cloud rates only cloud-billed meters with a plan; the verdict is the same for all
        plan = self.plans(m.plan_id) if m.billing_mode == "cloud" and m.plan_id else None
        outcome = rules.judge(plan, m.baseline, r, m.rated_kw, now=now, max_gap=self.max_gap, max_skew=self.max_skew)
        verdict = outcome.verdict
        if verdict.action == rules.DUPLICATE:
            return "duplicate"
        events: list[Event] = []
        if not m.online:
            events.append(self._event(m, f"online:{r.seq}", "meter_online", "表计恢复在线", {"seq": r.seq}))
        charge: Charge | None = None
        new_baseline: Baseline | None = outcome.baseline
        if verdict.action == rules.BILL and m.billing_mode == "cloud" and not m.plan_id:
            # no tariff yet: nothing can be rated; keep the baseline so that the usage is
            # billed from it once a plan is assigned, and tell an admin
            events.append(self._event(m, f"no_plan:{r.seq}", "meter_without_plan", "表计未设置电价方案，暂不计费",
                                      {"seq": r.seq}))
            verdict = replace(verdict, action="no_plan", moves_baseline=False)
            new_baseline = None
        elif verdict.action == rules.BILL and closed:
            # the account is closed: nothing to post to; the baseline moves (the next
            # account starts from here) and an admin sees the unbilled usage
            events.append(self._event(m, f"closed:{r.seq}", "reading_after_close", "账户已销户，表计仍有用量，未计费",
                                      {"seq": r.seq, "account_id": m.account_id,
                                       "quantity": str(verdict.quantity), "total": str(r.total)}))
            verdict = replace(verdict, action="unbilled_closed")
        elif verdict.action == rules.BILL:  # (meter-side billing: no charge, the meter holds the money)
            charge = outcome.charge
        elif verdict.is_anomaly:
            events.append(self._anomaly(m, r, verdict, outcome.charge))
        if m.billing_mode == "meter" and r.balance is not None:
            events += self._mirror_checks(m, r)
        reading = {"read_at": r.read_at.isoformat(), "total": str(r.total), "seq": r.seq,
                   "registers": {k: str(v) for k, v in r.registers.items()}}
        if verdict.action == rules.BILL and m.baseline is not None and usage_rules.utility(m.kind) == "electricity":
            # the readings carry no power register: the meter's stored reading keeps the
            # average power over the interval it closes (the tenant's realtime view)
            power = usage_rules.average_power(verdict.quantity, m.baseline.read_at, r.read_at)
            if power is not None:
                reading["power_kw"] = str(power)
        update = MeterUpdate(
            meter_id=m.meter_id,
            expected_seq=m.baseline.seq if m.baseline else None,
            baseline=new_baseline,
            seen_at=format_time(now),
            reading=reading if verdict.moves_baseline else None,
            online=True,
            meter_balance=r.balance,
            purchase_count=r.purchase_count,
            relay_state=r.relay_state,
            expected_carry=m.baseline.carry if m.baseline else None,
        )
        # the usage aggregates move with the reading (cloud-rated readings: a charge; one
        # under a fen still adds its quantity)
        usage = usage_rules.usage_of(m.account_id, m.meter_id, m.kind, charge, r.read_at) if charge is not None else None
        adds: list[Write] = [AddUsage(usage)] if usage is not None else []
        if charge is None or charge.fen == 0:
            refused = self.unit.commit([update, *adds, *(AddEvent(e) for e in events)])
            if refused:
                if meter_refused(refused) is None:
                    # the meter is as we planned on, but the reading's events are written
                    # already: the same reading judged before (a redelivered anomaly)
                    return "duplicate"
                raise _StaleMeter(self.meters.load_meter(m.meter_id))
            self._remember(self._moved(m, new_baseline, r))
            self._relay_seen(m, r, verdict)
            return verdict.action if verdict.action != rules.BILL else "billed"
        # a posting: entry + account + meter (+ events) in one transaction
        decided = {}

        def hook(state: AccountState, entry: Entry):
            changes, alarm_events, decision = self.control.decide_after(state, entry, now)
            decided["d"] = (state, decision)
            return _with_cost(changes, state, usage), [update, *adds, *(AddEvent(e) for e in events + alarm_events)]

        req = PostingRequest(
            account_id=m.account_id,
            entry_id=rules.entry_id(m.meter_id, r.seq),
            kind=EntryKind.WATER if m.kind == "water" else EntryKind.ENERGY,
            amount=charge.fen,
            cause=f"reading:{m.meter_id}:{r.seq}",
            actor="rating",
            occurred_at=format_time(r.read_at),
            memo=f"{charge.quantity} {'m³' if m.kind == 'water' else 'kWh'}",
        )
        entry = self.ledger.post_request(req, hook=hook)
        if entry.duplicate:  # billed before by another delivery: our meter memory is stale
            raise _StaleMeter(self.meters.load_meter(m.meter_id))
        self._remember(self._moved(m, new_baseline, r))
        state, decision = decided["d"]
        if decision.trip_now:
            self.control.apply(state, decision, req.cause)
        self._relay_seen(m, r, verdict)
        return "billed"

    def _relay_seen(self, m: MeterState, r: MeterReading, verdict: Verdict) -> None:
        """A reading that reports a relay state other than the one recorded asks the
        reconciler to look at the account (a meter switched by hand, a command that never
        took, a site back from an outage)."""
        if r.relay_state and verdict.moves_baseline and r.relay_state != m.relay_state:
            self.control.supply_changed(m.account_id)

    @staticmethod
    def _moved(m: MeterState, baseline: Baseline | None, r: MeterReading) -> MeterState:
        return replace(
            m, baseline=baseline or m.baseline, online=True,
            meter_balance=r.balance if r.balance is not None else m.meter_balance,
            purchase_count=r.purchase_count if r.purchase_count is not None else m.purchase_count,
            relay_state=(r.relay_state if baseline is not None else None) or m.relay_state,
        )

    def _event(self, m: MeterState, event_id: str, kind: str, message: str, data: dict, status: str = "") -> Event:
        return Event(Subject.meter(m.meter_id), event_id, kind, m.property_id, format_time(self.clock()), status=status,
                     message=message, data=data)

    def _anomaly(self, m: MeterState, r: MeterReading, v: Verdict, proposal: Charge | None) -> Event:
        data: dict = {"seq": r.seq, "read_at": r.read_at.isoformat(), "total": str(r.total), "kind": v.action,
                      "detail": v.detail, "account_id": m.account_id,
                      "previous": {"seq": m.baseline.seq, "read_at": m.baseline.read_at.isoformat(),
                                   "total": str(m.baseline.total)} if m.baseline else {}}
        status = "recorded"
        if v.action in rules.PROPOSED and proposal is not None:
            # rated on the meter's carry as it stands (what approving it now would cost);
            # approval rates it again on the carry of that moment (rules.rate_approved)
            carry = m.baseline.carry
            data["proposed_fen"] = proposal.fen
            data["quantity"] = str(v.quantity)
            data["lines"] = [line.to_dict() for line in proposal.lines]
            data["by_period"] = {k: str(q) for k, q in (v.by_period or {}).items()}
            data["carry"] = {"remainder_fen": str(carry.remainder_fen), "cycle": carry.cycle,
                             "cycle_usage": str(carry.cycle_usage)}
            status = "open"  # an admin approves (bill it) or rejects
        return self._event(m, f"anomaly:{r.seq}:{v.action}", "anomaly", rules.ANOMALY_NAMES[v.action], data, status)

    def _mirror_checks(self, m: MeterState, r: MeterReading) -> list[Event]:
        out = []
        if r.purchase_count is not None and r.purchase_count != m.purchase_expected:
            out.append(self._event(m, f"mismatch:{r.seq}:count", "meter_mismatch", "表内购电次数与平台不一致",
                                   {"meter": r.purchase_count, "platform": m.purchase_expected}))
        if (m.meter_balance is not None and r.balance is not None and r.balance > m.meter_balance
                and r.purchase_count == m.purchase_count):
            out.append(self._event(m, f"mismatch:{r.seq}:balance", "meter_mismatch", "表内余额无充值却增加",
                                   {"before": m.meter_balance, "after": r.balance}))
        return out

    # -- admin decisions on anomalies ----------------------------------------------------

    def approve_anomaly(self, property_id: str, meter_id: str, event_id: str, actor: str) -> Entry | None:
        """Bill an open jump or gap exactly as a normal reading would be billed: rated on
        the meter's rating carry as it stands now (sub-fen remainder, tier cycle usage),
        which moves on with it, under the entry id the reading would have used, with the
        account's alarms and cut-off decided on the new balance. Entry, account, meter
        carry and the decision are one transaction. None when less than a fen is due."""
        e = self.events.get_event(Subject.meter(meter_id), event_id)
        if e is None or e.property_id != property_id or e.type != "anomaly":
            raise NotFound("异常记录不存在", code="anomaly_not_found")
        if e.status != "open":
            raise ConditionFailed("该异常已处理", code="anomaly_decided")
        d = e.data
        seq = int(d["seq"])
        start, end = datetime.fromisoformat(d["previous"]["read_at"]), datetime.fromisoformat(d["read_at"])
        quantity = Decimal(d["quantity"])
        by_period = {k: Decimal(v) for k, v in (d.get("by_period") or {}).items()} or None
        snap = d.get("carry") or {}
        at_detection = RatingCarry(Decimal(snap.get("remainder_fen", "0")), snap.get("cycle", ""),
                                   Decimal(snap.get("cycle_usage", "0")))
        for _ in range(20):
            m = self._meter(meter_id, fresh=True)
            if m is None or m.retired or m.baseline is None or not m.plan_id:
                raise Conflict("表计已更换或未设置电价方案，无法按原表计费", code="meter_retired")
            carry = m.baseline.carry
            charge = rules.rate_approved(self.plans(m.plan_id), start, end, quantity, by_period, carry,
                                         at_detection)
            usage = usage_rules.usage_of(m.account_id, meter_id, m.kind, charge, end)  # on its read time's day
            ops: list[Write] = [
                MoveCarry(meter_id, carry, charge.carry),
                DecideEvent(e.subject, event_id, "open", "approved", actor, {"approved_fen": charge.fen}),
                AddUsage(usage),
            ]
            try:
                entry = self._bill_approved(m, seq, d, charge, ops, actor, event_id, usage)
            except _StaleMeter:
                continue
            self._remember(replace(m, baseline=replace(m.baseline, carry=charge.carry)))
            return entry
        raise RuntimeError(f"anomaly {meter_id}:{event_id} could not be approved")

    def _bill_approved(self, m: MeterState, seq: int, d: dict, charge: Charge, ops: list, actor: str,
                       event_id: str, usage: Usage | None = None) -> Entry | None:
        def refused(meter_moved: bool):
            if meter_moved:  # the carry moved on meanwhile: rate again
                return _StaleMeter(m)
            return ConditionFailed("该异常已处理", code="anomaly_decided")

        if charge.fen == 0:
            refusals = self.unit.commit(ops)
            if refusals:
                raise refused(meter_refused(refusals) is not None)
            return None
        now = self.clock()
        decided = {}

        def hook(state: AccountState, entry: Entry):
            changes, alarm_events, decision = self.control.decide_after(state, entry, now)
            decided["d"] = (state, decision)
            return _with_cost(changes, state, usage), ops + [AddEvent(a) for a in alarm_events]

        req = PostingRequest(
            account_id=m.account_id, entry_id=rules.entry_id(m.meter_id, seq),
            kind=EntryKind.WATER if m.kind == "water" else EntryKind.ENERGY, amount=charge.fen,
            cause=f"anomaly:{m.meter_id}:{event_id}", actor=actor, occurred_at=format_time(datetime.fromisoformat(
                d["read_at"])),
            memo=f"{charge.quantity} {'m³' if m.kind == 'water' else 'kWh'} (异常审核后计费)",
        )
        try:
            entry = self.ledger.post_request(req, hook=hook)
        except WriteRefused as err:
            raise refused(meter_refused(err.refused) is not None) from None
        except IdempotencyConflict:  # billed by a concurrent approval at another carry
            raise refused(False) from None
        if entry.duplicate:
            raise refused(False)
        state, decision = decided["d"]
        if decision.trip_now:
            self.control.apply(state, decision, req.cause)
        return entry

    def reject_anomaly(self, property_id: str, meter_id: str, event_id: str, actor: str, reason: str = "") -> None:
        """Close an open jump or gap unbilled (its usage is never charged); `reason` is kept on the event."""
        e = self.events.get_event(Subject.meter(meter_id), event_id)
        if e is None or e.property_id != property_id or e.type != "anomaly":
            raise NotFound("异常记录不存在", code="anomaly_not_found")
        if not self.events.set_event_status(e.subject, event_id, "open", "rejected", actor,
                                            {"reason": reason} if reason else None):
            raise ConditionFailed("该异常已处理", code="anomaly_decided")


def _with_cost(changes: dict, state: AccountState, usage: Usage | None) -> dict:
    """The posting's account changes plus the account's recent daily costs with this
    usage's cost added (planned on the exact state the posting is conditioned on)."""
    if usage is None or usage.fen == 0:
        return changes
    costs = usage_rules.roll_daily_costs(state.control.get("daily_costs") or {}, usage.day, usage.fen)
    return {**changes, "daily_costs": costs}


class _StaleMeter(Exception):
    def __init__(self, meter: MeterState | None) -> None:
        super().__init__("meter state moved")
        if meter is None:
            raise NotFound("表计不存在", code="meter_not_found")
        self.meter = meter

