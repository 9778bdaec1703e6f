"""Remote control: alarms and cut-off/restore decisions made into commands, commands
sent to sites, results applied, and the periodic tick (pending cuts, expiry, offline).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from core.domain import control as policy
from core.domain import messages
from core.domain.directory import RelayState
from core.domain.errors import NotFound, ValidationError
from core.domain.ledger import AccountState, Entry, format_time
from core.integrations import queues
from core.services.cache import TTLCache
from core.services.ledger import Clock, LedgerService, utcnow
from core.store import directory as dstore
from core.store import metering as store

log = Logger(service="feikong", child=True)

RESEND_AFTER = timedelta(seconds=30)
OFFLINE_AFTER = timedelta(minutes=int(os.environ.get("FEIKONG_OFFLINE_MINUTES", "30")))


_sites = TTLCache()
_protection = TTLCache()


def site(site_id: str):
    return _sites.get(site_id, dstore.get_site)


def protection(property_id: str) -> policy.ProtectionSettings:
    return _protection.get(property_id, lambda p: policy.ProtectionSettings.from_dict(store.get_protection(p)))


def set_protection(property_id: str, settings: dict) -> policy.ProtectionSettings:
    parsed = policy.ProtectionSettings.from_dict(settings)
    store.set_protection(property_id, parsed.to_dict())
    _protection.clear()
    return parsed


def alarm_config(state: AccountState) -> policy.AlarmConfig:
    levels = state.control.get("alarm_levels")
    if not levels:
        return policy.AlarmConfig()
    return policy.AlarmConfig(tuple(levels), tuple(state.control.get("alarm_repeats") or [1] * len(levels)))


def control_view(state: AccountState, balance: int | None = None) -> policy.ControlView:
    c = state.control
    return policy.ControlView(
        balance=state.balance if balance is None else balance,
        overdraft_limit=state.overdraft_limit,
        keep_supply=bool(c.get("keep_supply")),
        cut_state=c.get("cut_state") or policy.CUT_NONE,
        cut_due_at=c.get("cut_due_at") or "",
        restore_line=int(c.get("restore_line") or 0),
    )


def alarm_event(state: AccountState, n: policy.AlarmNotice, at: datetime) -> dict:
    return {
        "scope": f"account#{state.account_id}",
        "event_id": f"alarm:{n.level_index + 1}:{n.crossing}:{n.occurrence}",
        "property_id": state.property_id,
        "at": format_time(at),
        "type": "low_balance",
        "status": "to_notify",
        "message": n.message,
        "data": {"level": n.level_index + 1, "threshold": n.threshold, "balance": n.balance,
                 "occurrence": n.occurrence},
    }


def decide_after(state: AccountState, entry: Entry, now: datetime) -> tuple[dict, list[dict], policy.ControlDecision]:
    """Alarms and supply decision for an account whose balance moves to entry.balance_after."""
    config = alarm_config(state)
    alarm_state, notices = policy.alarms_after(config, state.control.get("alarm_state") or {}, state.balance,
                                               entry.balance_after, now)
    alarm_state, repeats = policy.due_repeats(config, alarm_state, entry.balance_after, now)
    decision = policy.decide(control_view(state, entry.balance_after), protection(state.property_id), now)
    changes: dict = {}
    if alarm_state != (state.control.get("alarm_state") or {}):
        changes["alarm_state"] = alarm_state
    if decision.changed:
        changes["cut_state"] = decision.cut_state
        if decision.cut_state == policy.CUT_PENDING:
            changes["cut_due_at"] = decision.cut_due_at
            changes["cut_pending"] = "Y"
        else:
            changes["cut_due_at"] = None
            changes["cut_pending"] = None
    events = [alarm_event(state, n, now) for n in notices + repeats]
    return changes, events, decision


class Control:
    def __init__(self, ledger: LedgerService | None = None, clock: Clock = utcnow) -> None:
        self.ledger = ledger or LedgerService(clock=clock)
        self.clock = clock

    # -- commands ------------------------------------------------------------------

    def issue(self, meter_id: str, op: str, cause: str, actor: str = "system", args: dict | None = None) -> policy.Command:
        if op not in policy.OPERATIONS:
            raise ValidationError(f"未知命令 {op}", code="op_invalid")
        m = store.load_meter(meter_id)
        if m is None:
            raise NotFound("表计不存在", code="meter_not_found")
        now = self.clock()
        digest = hashlib.sha256(f"{meter_id}|{op}|{cause}|{sorted((args or {}).items())}".encode()).hexdigest()[:16]
        command = policy.Command(
            command_id=f"{op.lower()}-{digest}",
            site_id=m.site_id,
            meter_id=meter_id,
            op=op,
            args=args or {},
            cause=cause,
            actor=actor,
            issued_at=format_time(now),
            expires_at=format_time(now + policy.COMMAND_TTL),
        )
        relay = None
        if op in policy.RELAY_OPERATIONS:
            relay = RelayState.OPEN if op == policy.TRIP else RelayState.CLOSED
        event = {
            "scope": f"meter#{meter_id}", "event_id": f"command:{command.command_id}", "property_id": m.property_id,
            "at": command.issued_at, "type": "command", "status": "", "message": f"{op} ({cause})",
            "data": {"command_id": command.command_id, "op": op, "cause": cause, "actor": actor},
        }
        for _ in range(5):
            supersede = m.relay_command_id if relay else None
            if supersede == command.command_id:
                return command  # the same command is already the outstanding one
            outcome = store.create_command(command, m.property_id, m.account_id, supersede, relay and str(relay), event)
            if outcome == "exists":
                return store.get_command(command.command_id) or command
            if outcome == "created":
                self._send(command)
                log.info("command issued", command_id=command.command_id, meter_id=meter_id, op=op, cause=cause,
                         superseded=supersede)
                return command
            m = store.load_meter(meter_id)  # the outstanding command moved: look again
        raise RuntimeError(f"could not issue {op} for {meter_id}")

    def _send(self, c: policy.Command) -> None:
        s = site(c.site_id)
        body = messages.sign(
            messages.envelope("command", c.site_id, c.command_id, self.clock(), command_id=c.command_id,
                              meter_id=c.meter_id, op=c.op, args=c.args, issued_at=c.issued_at,
                              expires_at=c.expires_at),
            s.secret,
        )
        queues.send_command(s.down_queue, body, group=c.meter_id, dedup=c.command_id)
        store.move_command(c.command_id, policy.SENT, format_time(self.clock()), (policy.QUEUED,))

    def command_result(self, msg: dict) -> None:
        command_id, status = msg.get("command_id"), msg.get("status")
        if status not in (policy.APPLIED, policy.FAILED):
            raise messages.BadMessage("command result status must be applied or failed")
        c = store.get_command(str(command_id))
        if c is None or c.site_id != msg["site_id"] or c.meter_id != msg.get("meter_id"):
            log.warning("command result for an unknown command", command_id=command_id, site_id=msg["site_id"])
            return
        relay = msg.get("relay_state")
        relay = relay if relay in (RelayState.OPEN, RelayState.CLOSED) else None
        result = {"status": status, "relay_state": relay or "", "detail": str(msg.get("detail", ""))[:500],
                  "reported_at": str(msg.get("sent_at", ""))}
        moved = store.move_command(c.command_id, status, format_time(self.clock()), policy.OPEN_STATES, result)
        if c.op in policy.RELAY_OPERATIONS:
            store.clear_relay_command(c.meter_id, c.command_id, relay)
        applied = (store.get_command(c.command_id) or c).state == policy.APPLIED
        if c.op == policy.RECHARGE and applied:  # idempotent steps: safe on a redelivered result
            store.set_purchase_expected(c.meter_id, int(c.args["purchase_count"]))
        if c.op == policy.RECHARGE and applied and not c.args.get("carry_over"):
            # the money now sits in the meter: move it out of the platform balance, once
            self.ledger.post(account_id=c.account_id, entry_id=f"meter:{c.command_id}", kind="meter_transfer",
                             amount=int(c.args["amount"]), cause=f"command:{c.command_id}", actor="control",
                             memo=f"充值到表 {c.meter_id}")
        log.info("command result", command_id=c.command_id, status=status, relay_state=relay, recorded=moved)

    # -- supply ----------------------------------------------------------------------

    def apply(self, state: AccountState, decision: policy.ControlDecision, cause: str) -> list[policy.Command]:
        """Carry out a decision: TRIP or CLOSE every cloud-billed meter of the account."""
        if not (decision.trip_now or decision.restore_now):
            return []
        op = policy.TRIP if decision.trip_now else policy.CLOSE
        out = []
        for m in dstore.meters_of_account(state.account_id):
            if m.billing_mode != "cloud" or (op == policy.TRIP and m.keep_supply):
                continue
            out.append(self.issue(m.meter_id, op, cause, "control"))
        return out

    def credit(self, extras=(), **fields) -> Entry:
        """Post a credit (recharge, adjustment) and restore supply at once if it lifts the
        balance above the restore line. The payment path calls this."""
        now = self.clock()
        decisions = {}

        def hook(state: AccountState, entry: Entry):
            changes, events, decision = decide_after(state, entry, now)
            decisions["last"] = (state, decision)
            return changes, [lambda tx, e=e: store.add_event(tx, e) for e in events]

        entry = self.ledger.post(extras=extras, hook=hook, **fields)
        if not entry.duplicate and "last" in decisions:
            state, decision = decisions["last"]
            self.apply(state, decision, f"entry:{entry.entry_id}")
            if state.control.get("meter_side"):
                self.recharge_meters(state.account_id, entry.amount, f"entry:{entry.entry_id}")
        return entry

    def recharge_meters(self, account_id: str, amount: int, cause: str) -> list[policy.Command]:
        """Meter-side billing: send a credit to the meter that keeps the money, with the
        purchase count it must reach (so that the bridge can apply it at most once)."""
        out = []
        for m in dstore.meters_of_account(account_id):
            if m.billing_mode != "meter" or m.retired or amount <= 0:
                continue
            ctx = store.load_meter(m.meter_id)
            out.append(self.issue(m.meter_id, policy.RECHARGE, cause, "control",
                                  {"amount": amount, "purchase_count": ctx.purchase_expected + 1}))
            break  # one meter per account keeps the money
        return out

    def evaluate(self, account_id: str, cause: str) -> policy.ControlDecision:
        """Re-decide an account's supply now (pending cut due, keep-supply lifted...)."""
        state = self.ledger.state(account_id, fresh=True)
        now = self.clock()
        decision = policy.decide(control_view(state), protection(state.property_id), now)
        if decision.changed:
            expected = state.control.get("cut_state") or policy.CUT_NONE
            if not store.set_cut_state(account_id, decision.cut_state, decision.cut_due_at, expected):
                return decision  # someone else moved it; the next tick looks again
            self.ledger.remember_control(account_id, {"cut_state": decision.cut_state,
                                                      "cut_due_at": decision.cut_due_at})
            self.apply(state, decision, cause)
        return decision

    # -- admin settings --------------------------------------------------------------

    def configure_account(
        self,
        property_id: str,
        account_id: str,
        actor: str,
        *,
        overdraft_limit: int | None = None,
        restore_line: int | None = None,
        alarm_levels: list[int] | None = None,
        alarm_repeats: list[int] | None = None,
        keep_supply: bool | None = None,
    ) -> policy.ControlDecision:
        """Change an account's control settings, record who did it, and re-decide its
        supply at once (lowering the overdraft may cut; keep-supply lifted may cut)."""
        account = dstore.get_account(account_id)
        if account is None or account.property_id != property_id:
            raise NotFound("账户不存在", code="account_not_found")
        if overdraft_limit is not None and (isinstance(overdraft_limit, bool) or not isinstance(overdraft_limit, int)
                                            or not 0 <= overdraft_limit <= 10_000_000):
            raise ValidationError("透支额度必须是 0 到 100000 元之间的整数分", code="overdraft_invalid")
        if restore_line is not None and (isinstance(restore_line, bool) or not isinstance(restore_line, int)):
            raise ValidationError("复电线必须是以分为单位的整数", code="restore_line_invalid")
        if alarm_levels is not None:
            policy.AlarmConfig.build(alarm_levels, alarm_repeats or [1] * len(alarm_levels))
            alarm_repeats = alarm_repeats or [1] * len(alarm_levels)
        if keep_supply is not None and not isinstance(keep_supply, bool):
            raise ValidationError("保电必须是 true 或 false", code="keep_supply_invalid")
        changes = {k: v for k, v in {"overdraft_limit": overdraft_limit, "restore_line": restore_line,
                                     "alarm_levels": alarm_levels, "alarm_repeats": alarm_repeats,
                                     "keep_supply": keep_supply}.items() if v is not None}
        if not changes:
            raise ValidationError("没有要修改的设置", code="nothing_to_change")
        dstore.set_account_settings(account_id, **changes)
        now = format_time(self.clock())
        store.put_event({"scope": f"account#{account_id}", "event_id": f"settings:{now}:{uuid.uuid4().hex[:8]}", "property_id": property_id,
                         "at": now, "type": "settings", "message": "账户设置已修改",
                         "data": {"actor": actor, **{k: str(v) for k, v in changes.items()}}})
        return self.evaluate(account_id, f"settings:{account_id}:{now}")

    def set_meter_keep_supply(self, property_id: str, meter_id: str, keep: bool, actor: str) -> None:
        m = dstore.get_meter(meter_id)
        if m is None or m.property_id != property_id:
            raise NotFound("表计不存在", code="meter_not_found")
        if not isinstance(keep, bool):
            raise ValidationError("保电必须是 true 或 false", code="keep_supply_invalid")
        dstore.set_meter_keep_supply(meter_id, keep)
        now = format_time(self.clock())
        store.put_event({"scope": f"meter#{meter_id}", "event_id": f"keep_supply:{now}:{uuid.uuid4().hex[:8]}", "property_id": property_id,
                         "at": now, "type": "settings", "message": "保电已开启" if keep else "保电已取消",
                         "data": {"actor": actor, "keep_supply": keep}})

    # -- the tick ----------------------------------------------------------------------

    def tick(self) -> dict:
        now = self.clock()
        now_iso = now.isoformat()
        cuts = 0
        for account_id in store.due_cuts(now_iso):
            if self.evaluate(account_id, f"pending-cut:{account_id}").trip_now:
                cuts += 1
        expired = 0
        for command_id in store.expired_commands(format_time(now)):
            c = store.get_command(command_id)
            if c and store.move_command(command_id, policy.EXPIRED, format_time(now), policy.OPEN_STATES):
                expired += 1
                if c.op in policy.RELAY_OPERATIONS:
                    store.clear_relay_command(c.meter_id, c.command_id, None)
        resent = 0
        for command_id in store.open_commands(format_time(now)):
            c = store.get_command(command_id)
            # written but never sent (SQS failed right after the record): send it now; the
            # site's FIFO queue drops a copy it already has (deduplication id = command id)
            if c and c.state == policy.QUEUED and c.issued_at <= format_time(now - RESEND_AFTER):
                self._send(c)
                resent += 1
        offline = 0
        for meter_id, last_seen in store.stale_meters(format_time(now - OFFLINE_AFTER)):
            m = store.load_meter(meter_id)
            if m is None:
                continue
            event = {"scope": f"meter#{meter_id}", "event_id": f"offline:{last_seen}", "property_id": m.property_id,
                     "at": format_time(now), "type": "meter_offline", "message": "表计离线",
                     "data": {"last_seen": last_seen}}
            if store.set_meter_offline(meter_id, last_seen, event):
                offline += 1
        result = {"cuts": cuts, "expired": expired, "offline": offline, "resent": resent}
        log.info("control tick", **result)
        return result
