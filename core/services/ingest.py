"""Uplink messages from bridges: readings are rated and billed, command results applied.

One DynamoDB transaction per reading in the common case: the ledger entry, the account's
new balance (with any alarm or cut-off state change) and the meter's new baseline are
written together, planned against states this process remembers and conditioned on
them, so a duplicate or a stale memory costs a retry, never a wrong or double charge.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from datetime import timedelta

from aws_lambda_powertools import Logger

from core.domain import messages
from core.domain import rating as rules
from core.domain.errors import ConditionFailed, NotFound
from core.domain.ledger import AccountState, Entry, EntryKind, PostingRequest, format_time
from core.domain.rating import Baseline, MeterReading, Verdict
from core.domain.tariff import Charge, RatingCarry, rate
from core.services import tariffs
from core.services.control import Control, decide_after, site
from core.services.ledger import Clock, LedgerService, utcnow
from core.store import metering as store
from core.store.metering import MeterContext, MeterUpdate

log = Logger(service="feikong", child=True)


class Ingest:
    def __init__(self, ledger: LedgerService | None = None, clock: Clock = utcnow,
                 max_gap: timedelta | None = None) -> None:
        self.ledger = ledger or LedgerService(clock=clock)
        self.control = Control(self.ledger, clock)
        self.clock = clock
        self.max_gap = max_gap or timedelta(hours=float(os.environ.get("FEIKONG_MAX_GAP_HOURS", "6")))
        self._meters: dict[str, MeterContext] = {}
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
        s = site(msg["site_id"])
        if s is None or not messages.verify(msg, s.secret):
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
        return {kind: "recorded"}

    def _security_event(self, msg: dict, s) -> None:
        log.error("uplink message with a bad signature or unknown site", site_id=msg.get("site_id"),
                  message_id=msg.get("message_id"))
        if s is not None:
            store.put_event({
                "scope": f"site#{s.site_id}", "event_id": f"forged:{msg.get('message_id')}",
                "property_id": s.property_id, "at": format_time(self.clock()), "type": "security",
                "message": "收到签名无效的网关消息", "data": {"message_id": str(msg.get("message_id"))},
            })

    def _meter_event(self, msg: dict, property_id: str) -> None:
        meter_id = str(msg.get("meter_id", ""))
        m = self._meter(meter_id)
        if m is None or m.site_id != msg["site_id"]:
            return
        store.put_event({
            "scope": f"meter#{meter_id}", "event_id": f"bridge:{msg['message_id']}", "property_id": property_id,
            "at": format_time(self.clock()), "type": "meter_event", "message": str(msg.get("event", ""))[:200],
            "data": {"detail": str(msg.get("detail", ""))[:1000]},
        })

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
        return counts

    # -- one reading -------------------------------------------------------------------

    def _meter(self, meter_id: str, fresh: bool = False) -> MeterContext | None:
        with self._lock:
            m = None if fresh else self._meters.get(meter_id)
        if m is None:
            m = store.load_meter(meter_id)
            if m is not None:
                with self._lock:
                    self._meters[meter_id] = m
        return m

    def _remember(self, m: MeterContext) -> None:
        with self._lock:
            self._meters[m.meter_id] = m

    def reading(self, site_id: str, r: MeterReading) -> str:
        m = self._meter(r.meter_id)
        for _ in range(20):
            if m is None or m.site_id != site_id or m.retired:
                log.warning("reading for an unknown, retired or another site's meter", meter_id=r.meter_id,
                            site_id=site_id)
                return "refused"
            try:
                return self._once(m, r)
            except ConditionFailed as e:  # the meter moved on elsewhere: look again
                raw = e.details.get("item") if e.details.get("failed") == store.METER_TAG else None
                m = store.meter_from_raw(raw) if raw else self._meter(r.meter_id, fresh=True)
                self._remember(m)
            except _StaleMeter as e:
                m = e.meter
                self._remember(m)
        raise RuntimeError(f"reading {r.meter_id}:{r.seq} could not be applied")

    def _once(self, m: MeterContext, r: MeterReading) -> str:
        verdict = rules.assess(m.baseline, r, m.rated_kw, self.max_gap)
        if verdict.action == rules.DUPLICATE:
            return "duplicate"
        now = self.clock()
        events: list[dict] = []
        if not m.online:
            events.append(self._event(m, f"online:{r.seq}", "meter_online", "表计恢复在线", {"seq": r.seq}))
        charge: Charge | None = None
        new_baseline: Baseline | None = None
        if verdict.action == rules.BASELINE:
            new_baseline = Baseline(r.seq, r.read_at, r.total, dict(r.registers), RatingCarry())
        elif verdict.action == rules.BILL and m.billing_mode == "cloud" and not m.plan_id:
            # no tariff yet: nothing can be rated; keep the baseline so that the usage is
            # billed from it once a plan is assigned, and tell an admin
            events.append(self._event(m, f"no_plan:{r.seq}", "meter_without_plan", "表计未设置电价方案，暂不计费",
                                      {"seq": r.seq}))
            verdict = replace(verdict, action="no_plan", moves_baseline=False)
        elif verdict.action == rules.BILL and m.billing_mode == "cloud":
            charge = self._rate(m, r, verdict, m.baseline.carry)
            new_baseline = Baseline(r.seq, r.read_at, r.total, dict(r.registers), charge.carry)
        elif verdict.action == rules.BILL:  # meter-side billing: the meter holds the money
            new_baseline = Baseline(r.seq, r.read_at, r.total, dict(r.registers), m.baseline.carry)
        elif verdict.is_anomaly:
            events.append(self._anomaly(m, r, verdict))
            if verdict.moves_baseline:
                new_baseline = Baseline(r.seq, r.read_at, r.total, dict(r.registers), m.baseline.carry)
        if m.billing_mode == "meter" and r.balance is not None:
            events += self._mirror_checks(m, r)
        update = MeterUpdate(
            meter_id=m.meter_id,
            expected_seq=m.baseline.seq if m.baseline else None,
            baseline=new_baseline,
            seen_at=format_time(now),
            reading={"read_at": r.read_at.isoformat(), "total": str(r.total), "seq": r.seq,
                     "registers": {k: str(v) for k, v in r.registers.items()}} if verdict.moves_baseline else None,
            online=True,
            meter_balance=r.balance,
            purchase_count=r.purchase_count,
        )
        if charge is None or charge.fen == 0:
            failures = store.commit_without_posting(update, events)
            if failures:
                fresh = store.load_meter(m.meter_id)
                raise _StaleMeter(fresh)
            self._remember(self._moved(m, new_baseline, r))
            return verdict.action if verdict.action != rules.BILL else "billed"
        # a posting: entry + account + meter (+ events) in one transaction
        decided = {}

        def hook(state: AccountState, entry: Entry):
            changes, alarm_events, decision = decide_after(state, entry, now)
            decided["d"] = (state, decision)
            extras = [update.add_to] + [lambda tx, e=e: store.add_event(tx, e) for e in events + alarm_events]
            return changes, extras

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
            raise _StaleMeter(store.load_meter(m.meter_id))
        self._remember(self._moved(m, new_baseline, r))
        state, decision = decided["d"]
        if decision.trip_now:
            self.control.apply(state, decision, req.cause)
        return "billed"

    def _rate(self, m: MeterContext, r: MeterReading, v: Verdict, carry: RatingCarry) -> Charge:
        if not m.plan_id:
            raise NotFound("表计未设置电价方案", code="meter_without_plan", meter_id=m.meter_id)
        return rate(tariffs.plan(m.plan_id), m.baseline.read_at, r.read_at, v.quantity, carry, v.by_period)

    @staticmethod
    def _moved(m: MeterContext, baseline: Baseline | None, r: MeterReading) -> MeterContext:
        return replace(
            m, baseline=baseline or m.baseline, online=True,
            meter_balance=r.balance if r.balance is not None else m.meter_balance,
            purchase_count=r.purchase_count if r.purchase_count is not None else m.purchase_count,
        )

    def _event(self, m: MeterContext, event_id: str, kind: str, message: str, data: dict, status: str = "") -> dict:
        return {"scope": f"meter#{m.meter_id}", "event_id": event_id, "property_id": m.property_id,
                "at": format_time(self.clock()), "type": kind, "status": status, "message": message, "data": data}

    def _anomaly(self, m: MeterContext, r: MeterReading, v: Verdict) -> dict:
        data: dict = {"seq": r.seq, "read_at": r.read_at.isoformat(), "total": str(r.total), "kind": v.action,
                      "detail": v.detail, "account_id": m.account_id,
                      "previous": {"seq": m.baseline.seq, "read_at": m.baseline.read_at.isoformat(),
                                   "total": str(m.baseline.total)} if m.baseline else {}}
        status = "recorded"
        if v.action in (rules.JUMP, rules.GAP) and m.billing_mode == "cloud" and m.plan_id:
            proposal = self._rate(m, r, v, RatingCarry())
            data["proposed_fen"] = proposal.fen
            data["quantity"] = str(v.quantity)
            data["lines"] = [line.to_dict() for line in proposal.lines]
            status = "open"  # an admin approves (bill it) or rejects
        return self._event(m, f"anomaly:{r.seq}:{v.action}", "anomaly", rules.ANOMALY_NAMES[v.action], data, status)

    def _mirror_checks(self, m: MeterContext, r: MeterReading) -> list[dict]:
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

    def approve_anomaly(self, property_id: str, meter_id: str, event_id: str, actor: str) -> Entry:
        e = store.get_event(f"meter#{meter_id}", event_id)
        if e is None or e["property_id"] != property_id or e["type"] != "anomaly":
            raise NotFound("异常记录不存在", code="anomaly_not_found")
        if e["status"] != "open":
            raise ConditionFailed("该异常已处理", code="anomaly_decided")
        d = e["data"]
        m = self._meter(meter_id, fresh=True)
        entry = self.control.ledger.post(
            account_id=d["account_id"], entry_id=rules.entry_id(meter_id, int(d["seq"])),
            kind="water" if m.kind == "water" else "energy", amount=int(d["proposed_fen"]),
            cause=f"anomaly:{meter_id}:{event_id}", actor=actor, occurred_at=d["read_at"],
            memo=f"{d.get('quantity', '')} (异常审核后计费)",
        ) if int(d["proposed_fen"]) > 0 else None
        store.set_event_status(e["scope"], event_id, "open", "approved", actor)
        return entry

    def reject_anomaly(self, property_id: str, meter_id: str, event_id: str, actor: str) -> None:
        e = store.get_event(f"meter#{meter_id}", event_id)
        if e is None or e["property_id"] != property_id or e["type"] != "anomaly":
            raise NotFound("异常记录不存在", code="anomaly_not_found")
        if not store.set_event_status(e["scope"], event_id, "open", "rejected", actor):
            raise ConditionFailed("该异常已处理", code="anomaly_decided")


class _StaleMeter(Exception):
    def __init__(self, meter: MeterContext | None) -> None:
        super().__init__("meter state moved")
        if meter is None:
            raise NotFound("表计不存在", code="meter_not_found")
        self.meter = meter

