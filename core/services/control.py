"""Remote control: alarms and cut-off/restore decisions made into commands, commands
sent to sites, results applied, and the periodic tick (pending cuts, expiry, offline).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from core.domain import control as policy
from core.domain.clock import Clock, utcnow
from core.domain.directory import PaymentMode, RelayState, Site, require_payment_mode
from core.domain.errors import Conflict, NotFound, ValidationError, WriteRefused
from core.domain.events import Event, Subject
from core.domain.ledger import AccountState, Entry, format_time
from core.domain.meters import MeterState
from core.domain.writes import AddEvent, IssueRelay
from core.integrations import queues
from core.protocol import messages
from core.services import observability, sites
from core.services.cache import TTLCache
from core.services.ledger import LedgerService
from core.settings import get_settings
from core.store import commands as commands_store
from core.store import directory as dstore
from core.store import events as events_store
from core.store import ledger as accounts_store
from core.store import meters as meters_store
from core.store import tariffs as tariffs_store

log = Logger(service="feikong", child=True)

RESEND_AFTER = timedelta(seconds=30)


_sites = TTLCache()
_protection = TTLCache()
# which meters an account has (rarely changes): the restore after a payment reads only the
# meters themselves; the reconciler always asks afresh, so a meter added meanwhile is found
_account_meters = TTLCache()


def site(site_id: str):
    """A site with its signing keys (Secrets Manager), cached 60 s like other lookups."""
    return _sites.get(site_id, lambda i: sites.with_keys(dstore.get_site(i)))


def forget_sites() -> None:
    """Drop cached sites (after a key rotation in this process)."""
    _sites.clear()


def protection(property_id: str) -> policy.ProtectionSettings:
    return _protection.get(property_id, lambda p: policy.ProtectionSettings.from_dict(tariffs_store.get_protection(p)))


def set_protection(property_id: str, settings: dict) -> policy.ProtectionSettings:
    parsed = policy.ProtectionSettings.from_dict(settings)
    tariffs_store.set_protection(property_id, parsed.to_dict())
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
        postpaid=c.get("payment_mode") == PaymentMode.POSTPAID,
    )


def alarm_event(state: AccountState, n: policy.AlarmNotice, at: datetime) -> Event:
    return Event(
        Subject.account(state.account_id),
        f"alarm:{n.level_index + 1}:{n.crossing}:{n.occurrence}",
        "low_balance",
        state.property_id,
        format_time(at),
        status="to_notify",
        message=n.message,
        data={"level": n.level_index + 1, "threshold": n.threshold, "balance": n.balance,
              "occurrence": n.occurrence, "account_id": state.account_id},
    )


def supply_events(state: AccountState, decision: policy.ControlDecision, at: datetime) -> list[Event]:
    """The tenant's warning of a decision (docs/notifications.md "Producers and logs"):
    `cut_imminent` when a cut becomes pending (grace delay or protected window), with the
    time it falls due; its id is that time. The cut and the restore themselves are the relay
    commands' events (core/domain/tenant_feed.py). Accounts whose meters keep the money are
    not switched by the cloud: none."""
    if not decision.changed or state.control.get("meter_side"):
        return []
    was = state.control.get("cut_state") or policy.CUT_NONE
    if decision.cut_state == policy.CUT_PENDING and was != policy.CUT_PENDING:
        return [Event(Subject.account(state.account_id), f"cut_imminent:{decision.cut_due_at}", "cut_imminent",
                      state.property_id, format_time(at), status="to_notify",
                      message="余额低于断电线，到期将停止供电，请尽快充值",
                      data={"account_id": state.account_id, "balance": state.balance,
                            "cut_line": -state.overdraft_limit,
                            "due_at": format_time(datetime.fromisoformat(decision.cut_due_at))})]
    return []


def decide_after(state: AccountState, entry: Entry, now: datetime,
                 protection_of: Callable[[str], policy.ProtectionSettings] = protection,
                 ) -> tuple[dict, list[Event], policy.ControlDecision]:
    """Alarms and supply decision for an account whose balance moves to entry.balance_after.
    A post-paid account gets no low-balance alarms (its bills remind it: docs/billing.md)."""
    config = alarm_config(state)
    alarm_state, notices, repeats = state.control.get("alarm_state") or {}, [], []
    if state.control.get("payment_mode") != PaymentMode.POSTPAID:
        alarm_state, notices = policy.alarms_after(config, alarm_state, state.balance, entry.balance_after, now)
        alarm_state, repeats = policy.due_repeats(config, alarm_state, entry.balance_after, now)
    decision = policy.decide(control_view(state, entry.balance_after), protection_of(state.property_id), now)
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
    if decision.trip_now or decision.restore_now or (state.control.get("meter_side") and entry.amount > 0
                                                      and entry.balance_after > 0):
        changes.update(supply_flag(now))  # in the posting's transaction: a crash after it still converges
    events = [alarm_event(state, n, now) for n in notices + repeats]
    events += supply_events(replace(state, balance=entry.balance_after), decision, now)
    return changes, events, decision


def supply_flag(at: datetime) -> dict:
    """Account fields that put an account on the reconciler's list, due at `at`."""
    return {"supply_check": "Y", "supply_check_at": format_time(at), "supply_token": uuid.uuid4().hex}


class Control:
    """Repositories are injected (the real store modules by default; testkit.fakes for unit
    tests), as are the site lookup, the protection settings and the command queue (None:
    core.integrations.queues, looked up per send)."""

    def __init__(self, ledger: LedgerService | None = None, clock: Clock = utcnow, *,
                 meters=meters_store, commands=commands_store, events=events_store, accounts=accounts_store,
                 directory=dstore, sites: Callable[[str], Site | None] = site,
                 protection_of: Callable[[str], policy.ProtectionSettings] = protection,
                 send: Callable[..., None] | None = None) -> None:
        self.ledger = ledger or LedgerService(clock=clock)
        self.clock = clock
        self.meters, self.commands, self.events, self.accounts = meters, commands, events, accounts
        self.directory, self.sites, self.protection_of, self.send = directory, sites, protection_of, send

    def decide_after(self, state: AccountState, entry: Entry,
                     now: datetime) -> tuple[dict, list[Event], policy.ControlDecision]:
        return decide_after(state, entry, now, self.protection_of)

    # -- commands ------------------------------------------------------------------

    def issue(self, meter_id: str, op: str, cause: str, actor: str = "system", args: dict | None = None,
              attempts: int | None = None) -> policy.Command:
        """Issue a command to a meter. Relay commands (TRIP/CLOSE) get a fresh id per
        attempt and are not issued again while one of the same op is live; other commands
        are idempotent by (meter, op, cause, args)."""
        if op not in policy.OPERATIONS:
            raise ValidationError(f"未知命令 {op}", code="op_invalid")
        m = self.meters.load_meter(meter_id)
        if m is None:
            raise NotFound("表计不存在", code="meter_not_found")
        if op in policy.RELAY_OPERATIONS:
            return self._issue_relay(m, op, cause, actor, attempts)
        digest = hashlib.sha256(f"{meter_id}|{op}|{cause}|{sorted((args or {}).items())}".encode()).hexdigest()[:16]
        command = self._command(m, f"{op.lower()}-{digest}", op, args or {}, cause, actor)
        if self.commands.create_command(command, m.property_id, m.account_id, None, None, self._command_event(m, command)) \
                == "exists":
            return self.commands.get_command(command.command_id) or command
        self._send(command)
        log.info("command issued", command_id=command.command_id, meter_id=meter_id, op=op, cause=cause)
        return command

    def _command(self, m: MeterState, command_id: str, op: str, args: dict, cause: str, actor: str) -> policy.Command:
        now = self.clock()
        return policy.Command(
            command_id=command_id, site_id=m.site_id, meter_id=m.meter_id, op=op, args=args, cause=cause,
            actor=actor, issued_at=format_time(now), expires_at=format_time(now + policy.COMMAND_TTL),
            account_id=m.account_id,
        )

    @staticmethod
    def _command_event(m: MeterState, c: policy.Command) -> Event:
        return Event(Subject.meter(m.meter_id), f"command:{c.command_id}", "command", m.property_id, c.issued_at,
                     message=f"{c.op} ({c.cause})",
                     # account_id: a relay command is news for the account's tenants (core/domain/tenant_feed.py)
                     data={"command_id": c.command_id, "op": c.op, "cause": c.cause, "actor": c.actor,
                           "account_id": m.account_id, **c.args})

    def live_relay(self, m: MeterState) -> policy.Command | None:
        """The meter's outstanding relay command if it may still run."""
        if not m.relay_command_id:
            return None
        c = self.commands.get_command(m.relay_command_id)
        if c is None or c.state not in policy.OPEN_STATES or c.expires_at <= format_time(self.clock()):
            return None
        return c

    def _issue_relay(self, m: MeterState, op: str, cause: str, actor: str, attempts: int | None) -> policy.Command:
        relay = RelayState.OPEN if op == policy.TRIP else RelayState.CLOSED
        for _ in range(8):
            live = self.live_relay(m)
            if live is not None and live.op == op:
                return live  # the same order is already on its way
            seq = m.relay_seq + 1
            command = self._command(m, policy.relay_command_id(m.meter_id, op, seq), op, {}, cause, actor)
            outcome = self.commands.create_command(command, m.property_id, m.account_id, m.relay_command_id, str(relay),
                                           self._command_event(m, command), relay_seq=seq,
                                           attempts=attempts if attempts is not None else 1,
                                           supersede_open=live is not None)
            if outcome == "created":
                self._send(command)
                log.info("command issued", command_id=command.command_id, meter_id=m.meter_id, op=op, cause=cause,
                         superseded=live.command_id if live else None, attempt=attempts)
                return command
            if outcome == "exists":  # this very attempt was written before (a lost response)
                return self.commands.get_command(command.command_id) or command
            m = self.meters.load_meter(m.meter_id)  # another issuer moved the meter: look again
        raise RuntimeError(f"could not issue {op} for {m.meter_id}")

    def _send(self, c: policy.Command) -> None:
        s = self.sites(c.site_id)
        body = messages.sign(
            messages.envelope("command", c.site_id, c.command_id, self.clock(), command_id=c.command_id,
                              meter_id=c.meter_id, op=c.op, args=c.args, issued_at=c.issued_at,
                              expires_at=c.expires_at),
            s.secret,
        )
        (self.send or queues.send_command)(s.down_queue, body, group=c.meter_id, dedup=c.command_id)
        self.commands.move_command(c.command_id, policy.SENT, format_time(self.clock()), (policy.QUEUED,))
        observability.count("CommandsIssued")

    def command_result(self, msg: dict) -> None:
        command_id, status = msg.get("command_id"), msg.get("status")
        if status not in (policy.APPLIED, policy.FAILED):
            raise messages.BadMessage("command result status must be applied or failed")
        c = self.commands.get_command(str(command_id))
        if c is None or c.site_id != msg["site_id"] or c.meter_id != msg.get("meter_id"):
            log.warning("command result for an unknown command", command_id=command_id, site_id=msg["site_id"])
            return
        relay = msg.get("relay_state")
        relay = relay if relay in (RelayState.OPEN, RelayState.CLOSED) else None
        reported_at = str(msg.get("sent_at", ""))
        result = {"status": status, "relay_state": relay or "", "detail": str(msg.get("detail", ""))[:500],
                  "reported_at": reported_at}
        if isinstance(msg.get("modbus_exception"), int):  # the meter refused the write (bridge: docs/bridge.md)
            result["modbus_exception"] = msg["modbus_exception"]
        moved = self.commands.move_command(c.command_id, status, format_time(self.clock()), policy.OPEN_STATES, result)
        observability.count("CommandsFailed", bool(moved) and status == policy.FAILED)  # once, however often reported
        if c.op in policy.RELAY_OPERATIONS:
            # what the meter read back is recorded whatever became of the command (a late
            # result of an expired command still tells the truth about the relay)
            self.meters.clear_relay_command(c.meter_id, c.command_id, relay, reported_at)
            if status != policy.APPLIED or relay != policy.relay_target(c.op):
                # the meter is not where the order meant it to be: the reconciler looks (an
                # intent that changed since the order flagged the account when it changed)
                self.supply_changed(c.account_id)
        if c.op == policy.RECHARGE:
            self._purchase_result(c, status, msg)
        log.info("command result", command_id=c.command_id, status=status, relay_state=relay, recorded=moved)

    def _purchase_result(self, c: policy.Command, status: str, msg: dict) -> None:
        """Apply a RECHARGE result, whatever became of its command (expired, superseded):
        the purchase count says whether the money is on the meter."""
        count = int(c.args["purchase_count"])
        reported = msg.get("purchase_count")
        if status == policy.APPLIED and (reported is None or reported == count):
            # the money now sits in the meter: move it out of the platform balance, once per purchase
            self.ledger.post(account_id=c.account_id, entry_id=policy.purchase_entry_id(c.meter_id, count),
                             kind="meter_transfer", amount=int(c.args["amount"]), cause=f"command:{c.command_id}",
                             actor="control", memo=f"充值到表 {c.meter_id}（第 {count} 次购电）")
            self.meters.purchase_applied(c.meter_id, count)
        else:
            log.warning("recharge not applied", command_id=c.command_id, purchase_count=count, meter_count=reported,
                        detail=str(msg.get("detail", ""))[:200])
        self.supply_changed(c.account_id)

    # -- supply ----------------------------------------------------------------------

    def apply(self, state: AccountState, decision: policy.ControlDecision, cause: str,
              meters: list[MeterState] | None = None, issued: frozenset[str] = frozenset()) -> list[policy.Command]:
        """Carry out a decision at once: TRIP or CLOSE every cloud-billed meter of the account
        (the reconciler follows up on any that does not report the new state). `meters`: the
        account's meters if already loaded; `issued`: meters whose command is already written."""
        if not (decision.trip_now or decision.restore_now):
            return []
        op = policy.TRIP if decision.trip_now else policy.CLOSE
        out = []
        for m in self._relay_meters(state, decision, op, meters):
            if m.meter_id not in issued:
                out.append(self._issue_relay(m, op, cause, "control", 1))
        observability.count("SupplyCut" if op == policy.TRIP else "SupplyRestored", len(out))
        return out

    def _relay_meters(self, state: AccountState, decision: policy.ControlDecision, op: str,
                      meters: list[MeterState] | None) -> list[MeterState]:
        """The account's meters that `op` applies to under `decision` (keep-supply meters are not tripped)."""
        if meters is None:
            meters = self.meters.load_meters(_account_meters.get(state.account_id, self.meters.meter_ids_of_account))
        out = []
        for m in meters:
            if m.account_id != state.account_id:  # moved to another account since it was cached
                continue
            intended = policy.intended_relay(decision.cut_state, m.billing_mode, m.keep_supply, m.retired,
                                             m.manual_open)
            if intended is not None and policy.relay_op(intended) == op:
                out.append(m)
        return out

    def credit(self, extras=(), notice: Callable[[Entry], Event] | None = None, **fields) -> Entry:
        """Post a credit (recharge, adjustment) and restore supply at once if it lifts the
        balance above the restore line. The payment path calls this. The restore's CLOSE is
        written in the credit's own transaction for every meter with no relay command
        outstanding (IssueRelay), so it is sent right after the money lands; a meter that
        moved meanwhile gets its CLOSE the usual way after the credit. A credit that was
        posted before (a retried notification after a crash) reconciles the account at once,
        so whatever the crash left undone is done now. `notice(entry)`: an event recorded in
        the credit's transaction that needs the entry (the payment receipt's new balance)."""
        now = self.clock()
        decisions: dict = {}
        loaded: dict[str, list[MeterState]] = {}
        fold = [True]

        def hook(state: AccountState, entry: Entry):
            changes, events, decision = self.decide_after(state, entry, now)
            issues: list[IssueRelay] = []
            if decision.restore_now:
                if "meters" not in loaded:
                    loaded["meters"] = self._relay_meters(state, decision, policy.CLOSE, None)
                if fold[0]:
                    issues = [self._close_record(m, f"entry:{entry.entry_id}") for m in loaded["meters"]
                              if not m.relay_command_id]
            decisions["last"] = (state, decision, issues)
            if notice is not None:
                events = [*events, notice(entry)]
            return changes, [*(AddEvent(e) for e in events), *issues]

        try:
            entry = self.ledger.post(extras=extras, hook=hook, fresh=True, **fields)
        except WriteRefused as e:
            if not any(isinstance(r.write, IssueRelay) for r in e.refused):
                raise
            fold[0] = False  # a meter moved since it was read: the credit alone, then the CLOSE as usual
            loaded.pop("meters", None)
            entry = self.ledger.post(extras=extras, hook=hook, fresh=True, **fields)
        if entry.duplicate:
            self.reconcile_account(entry.account_id)
        elif "last" in decisions:
            state, decision, issues = decisions["last"]
            for w in issues:
                self._send(w.command)
                log.info("command issued", command_id=w.command.command_id, meter_id=w.command.meter_id,
                         op=w.command.op, cause=w.command.cause, attempt=1)
            observability.count("SupplyRestored", len(issues))  # the CLOSEs written with the credit
            self.apply(state, decision, f"entry:{entry.entry_id}", loaded.get("meters"),
                       frozenset(w.command.meter_id for w in issues))
            if state.control.get("meter_side"):
                self.reconcile_account(state.account_id)
        return entry

    def _close_record(self, m: MeterState, cause: str) -> IssueRelay:
        seq = m.relay_seq + 1
        command = self._command(m, policy.relay_command_id(m.meter_id, policy.CLOSE, seq), policy.CLOSE, {}, cause,
                                "control")
        return IssueRelay(command, m.property_id, str(RelayState.CLOSED), seq, self._command_event(m, command))

    def supply_changed(self, account_id: str, at: datetime | None = None) -> None:
        """Put an account on the reconciler's list (due now unless told otherwise)."""
        f = supply_flag(at or self.clock())
        self.accounts.flag_supply(account_id, f["supply_check_at"], f["supply_token"])

    def evaluate(self, account_id: str, cause: str) -> policy.ControlDecision:
        """Re-decide an account's supply now (pending cut due, keep-supply lifted...)."""
        state = self.ledger.state(account_id, fresh=True)
        now = self.clock()
        decision = policy.decide(control_view(state), self.protection_of(state.property_id), now)
        if decision.changed:
            expected = state.control.get("cut_state") or policy.CUT_NONE
            if not self.accounts.set_cut_state(account_id, decision.cut_state, decision.cut_due_at, expected):
                return decision  # someone else moved it; the next tick looks again
            self.ledger.remember_control(account_id, {"cut_state": decision.cut_state,
                                                      "cut_due_at": decision.cut_due_at})
            # the tenant's warning of a cut now pending: after the conditional write that made
            # it, so only its winner records it (id: the due time)
            for e in supply_events(state, decision, now):
                self.events.put_event(e)
            if decision.trip_now or decision.restore_now:
                self.supply_changed(account_id)
            self.apply(state, decision, cause)
        return decision

    # -- reconciliation ----------------------------------------------------------------

    def reconcile_account(self, account_id: str) -> dict:
        """Bring every meter of an account to its intended state: relays to what the cut
        state says, meter-side money onto the meter. Clears the account's supply check when
        everything agrees, else moves it to when the next look is due."""
        check = self.accounts.supply_check(account_id)
        state = self.ledger.state(account_id, fresh=True)
        now = self.clock()
        cut_state = state.control.get("cut_state") or policy.CUT_NONE
        waits: list[datetime] = []
        money_done = False
        for m in self.meters.meters_of_account(account_id):
            if m.retired:
                continue
            if m.billing_mode == "meter":
                if not money_done:  # one meter per account keeps the money
                    money_done = True
                    wait = self._reconcile_money(state, m, now)
                else:
                    wait = None
            else:
                wait = self._reconcile_relay(m, cut_state, now)
            if wait is not None:
                waits.append(wait)
        if check is not None:
            self.accounts.settle_supply_check(account_id, check[0], format_time(min(waits)) if waits else None)
        return {"account_id": account_id, "agreed": not waits}

    def _reconcile_relay(self, m: MeterState, cut_state: str, now: datetime) -> datetime | None:
        """None when the meter reports what it should; else when to look again."""
        intended = policy.intended_relay(cut_state, m.billing_mode, m.keep_supply, m.retired, m.manual_open)
        if intended is None:
            return None
        op = policy.relay_op(intended)
        live = self.live_relay(m)
        if not policy.needs_command(intended, m.relay_state):
            if live is not None and live.op != op:  # an order of an older intent is still out: overrule it
                return policy.next_look(now, self._issue_relay(m, op, "reconcile", "control", 1).expires_at)
            if m.relay_attempts:
                self.meters.reset_relay_attempts(m.meter_id)
            return None
        if live is not None and live.op == op:
            if live.state == policy.QUEUED:  # written but never sent (a crash after the record): send it now;
                self._send(live)  # the site's FIFO queue drops a copy it already has (dedup id = command id)
            return policy.next_look(now, live.expires_at)
        same_streak = m.desired_relay == intended  # the last order was for this same intent
        if same_streak and m.relay_last_try and m.relay_attempts:
            due = datetime.fromisoformat(m.relay_last_try) + policy.retry_delay(m.relay_attempts)
            if due > now:
                return due
        attempts = m.relay_attempts + 1 if same_streak else 1
        command = self._issue_relay(m, op, f"reconcile:{attempts}", "control", attempts)
        if attempts == policy.ALARM_AFTER_ATTEMPTS + 1:  # one per failing streak (the command that follows it)
            self.events.put_event(Event(
                Subject.meter(m.meter_id), f"supply_stuck:{command.command_id}", "command_failing", m.property_id,
                format_time(now), status="to_notify",
                message="表计多次未执行" + ("断电" if op == policy.TRIP else "合闸") + "命令，请现场检查",
                data={"account_id": m.account_id, "meter_id": m.meter_id, "site_id": m.site_id, "op": op,
                      "intended": intended, "reported": m.relay_state, "attempts": attempts - 1,
                      "command_id": command.command_id},
            ))
            log.warning("supply does not converge", meter_id=m.meter_id, intended=intended, reported=m.relay_state,
                        attempts=attempts - 1)
        return policy.next_look(now, command.expires_at)

    def _reconcile_money(self, state: AccountState, m: MeterState, now: datetime) -> datetime | None:
        """Meter-side billing: the platform balance is money on its way to the meter. Send
        it as one purchase at a time (see docs/control.md, the purchase-count protocol)."""
        if m.purchase_pending is not None:
            count, amount, attempt = m.purchase_pending, int(m.purchase_pending_amount or 0), m.purchase_attempt
            last = self.commands.get_command(policy.recharge_command_id(m.meter_id, count, attempt))
            if last is not None and last.state in policy.OPEN_STATES and last.expires_at > format_time(now):
                return policy.next_look(now, last.expires_at)
            if last is not None:
                due = datetime.fromisoformat(last.issued_at) + policy.retry_delay(attempt)
                if due > now:
                    return due
            return self._issue_purchase(m, count, amount, attempt + 1, expected_attempt=attempt)
        if state.balance <= 0:
            return None
        return self._issue_purchase(m, m.purchase_expected + 1, state.balance, 1, expected_attempt=None)

    def _issue_purchase(self, m: MeterState, count: int, amount: int, attempt: int,
                        expected_attempt: int | None) -> datetime:
        args = {"amount": amount, "purchase_count": count}
        command = self._command(m, policy.recharge_command_id(m.meter_id, count, attempt), policy.RECHARGE, args,
                                f"purchase:{count}:{attempt}", "control")
        outcome = self.commands.create_command(command, m.property_id, m.account_id, None, None,
                                       self._command_event(m, command), purchase=(count, amount, attempt),
                                       expected_purchase=expected_attempt)
        if outcome == "created" and attempt == policy.ALARM_AFTER_ATTEMPTS + 1:  # one per purchase that keeps failing
            self.events.put_event(Event(
                Subject.meter(m.meter_id), f"purchase_stuck:{count}", "command_failing", m.property_id,
                command.issued_at, status="to_notify", message="表计多次未执行充值命令，请现场检查",
                data={"account_id": m.account_id, "meter_id": m.meter_id, "site_id": m.site_id, "op": policy.RECHARGE, "intended": "recharge",
                      "purchase_count": count, "amount": amount, "attempts": attempt - 1,
                      "command_id": command.command_id}))
        if outcome == "created":
            self._send(command)
            log.info("purchase issued", command_id=command.command_id, meter_id=m.meter_id, purchase_count=count,
                     amount=amount, attempt=attempt)
        elif outcome == "retry":  # another process moved the purchase meanwhile: look again soon
            return self.clock()
        return policy.next_look(self.clock(), command.expires_at)

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
        payment_mode: str | None = None,
    ) -> policy.ControlDecision:
        """Change an account's control settings, record who did it, and re-decide its
        supply at once (lowering the overdraft may cut; keep-supply lifted may cut)."""
        account = self.directory.get_account(account_id)
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
        if payment_mode is not None:  # 后付费: never cut for money (docs/billing.md)
            payment_mode = require_payment_mode(payment_mode)
            if payment_mode == PaymentMode.POSTPAID and self.ledger.state(account_id, fresh=True).control.get(
                    "meter_side"):
                raise Conflict("表端计费（电费下发到表）的账户不能设为后付费", code="payment_mode_meter_side")
        changes = {k: v for k, v in {"overdraft_limit": overdraft_limit, "restore_line": restore_line,
                                     "alarm_levels": alarm_levels, "alarm_repeats": alarm_repeats,
                                     "keep_supply": keep_supply, "payment_mode": payment_mode}.items()
                   if v is not None}
        if not changes:
            raise ValidationError("没有要修改的设置", code="nothing_to_change")
        self.directory.set_account_settings(account_id, **changes)
        now = format_time(self.clock())
        self.events.put_event(Event(Subject.account(account_id), f"settings:{now}:{uuid.uuid4().hex[:8]}", "settings",
                                    property_id, now, message="账户设置已修改",
                                    data={"actor": actor, **{k: str(v) for k, v in changes.items()}}))
        return self.evaluate(account_id, f"settings:{account_id}:{now}")

    def set_meter_keep_supply(self, property_id: str, meter_id: str, keep: bool, actor: str) -> None:
        m = self.directory.get_meter(meter_id)
        if m is None or m.property_id != property_id:
            raise NotFound("表计不存在", code="meter_not_found")
        if not isinstance(keep, bool):
            raise ValidationError("保电必须是 true 或 false", code="keep_supply_invalid")
        self.directory.set_meter_keep_supply(meter_id, keep)
        now = format_time(self.clock())
        self.events.put_event(Event(Subject.meter(meter_id), f"keep_supply:{now}:{uuid.uuid4().hex[:8]}", "settings",
                                    property_id, now, message="保电已开启" if keep else "保电已取消",
                                    data={"actor": actor, "keep_supply": keep}))

    def manual_relay(self, property_id: str, meter_id: str, op: str, reason: str, actor: str) -> policy.Command:
        """An admin's manual trip or close of one meter, kept reconciled: a TRIP holds the
        meter open (its intended state) until a manual CLOSE lifts the hold, so the
        reconciler neither undoes the trip nor forgets it; the account is flagged so that a
        lost command is retried. A CLOSE of a meter whose account is cut for money is
        refused (pay, raise the overdraft or turn on keep-supply instead)."""
        if op not in policy.RELAY_OPERATIONS:
            raise ValidationError("操作必须是 TRIP（分闸）或 CLOSE（合闸）", code="op_invalid")
        reason = (reason or "").strip() if isinstance(reason, str) else ""
        if not reason:
            raise ValidationError("请填写操作原因", code="reason_required", field="reason")
        if len(reason) > 100:
            raise ValidationError("操作原因不能超过 100 个字", code="reason_too_long", field="reason")
        m = self.meters.load_meter(meter_id)
        if m is None or m.property_id != property_id:
            raise NotFound("表计不存在", code="meter_not_found")
        if m.retired:
            raise Conflict("该表已被更换，不能操作", code="meter_retired")
        if op == policy.CLOSE:
            state = self.ledger.state(m.account_id, fresh=True)
            cut = (state.control.get("cut_state") or policy.CUT_NONE) == policy.CUT_DONE
            if cut and m.billing_mode == "cloud" and not m.keep_supply:
                raise Conflict("该账户因余额不足已断电，请先充值、调高透支额度或开启保电后再合闸",
                               code="account_cut")
        self.meters.set_manual_open(meter_id, op == policy.TRIP, reason)
        self.supply_changed(m.account_id)  # a lost order is retried by the reconciler
        m = self.meters.load_meter(meter_id)
        command = self._issue_relay(m, op, "manual", actor, 1)
        now = format_time(self.clock())
        self.events.put_event(Event(Subject.meter(meter_id), f"manual:{command.command_id}", "manual_relay",
                                    property_id, now, message=("手动分闸：" if op == policy.TRIP else "手动合闸：") + reason,
                                    data={"actor": actor, "op": op, "reason": reason,
                                          "command_id": command.command_id}))
        return command

    # -- the tick ----------------------------------------------------------------------

    def tick(self) -> dict:
        now = self.clock()
        now_iso = now.isoformat()
        cuts = 0
        for account_id in self.accounts.due_cuts(now_iso):
            if self.evaluate(account_id, f"pending-cut:{account_id}").trip_now:
                cuts += 1
        expired = 0
        for command_id in self.commands.expired_commands(format_time(now)):
            c = self.commands.get_command(command_id)
            if c and self.commands.move_command(command_id, policy.EXPIRED, format_time(now), policy.OPEN_STATES):
                expired += 1
                if c.op in policy.RELAY_OPERATIONS:
                    self.meters.clear_relay_command(c.meter_id, c.command_id, None)
                if c.op in policy.RELAY_OPERATIONS + (policy.RECHARGE,):
                    self.supply_changed(c.account_id)
        resent = 0
        for command_id in self.commands.open_commands(format_time(now)):
            c = self.commands.get_command(command_id)
            # written but never sent (SQS failed right after the record): send it now; the
            # site's FIFO queue drops a copy it already has (deduplication id = command id)
            if c and c.state == policy.QUEUED and c.issued_at <= format_time(now - RESEND_AFTER):
                self._send(c)
                resent += 1
        reconciled = 0
        for account_id in self.accounts.due_supply_checks(format_time(now)):
            try:
                self.reconcile_account(account_id)
                reconciled += 1
            except Exception:  # one account must not stop the others; its check stays due
                log.exception("reconcile failed", account_id=account_id)
        offline = 0
        offline_sites: set[str] = set()  # no bridge heartbeat is stored: a silent bridge silences its meters
        for meter_id, last_seen in self.meters.stale_meters(format_time(now - timedelta(minutes=get_settings().offline_minutes))):
            m = self.meters.load_meter(meter_id)
            if m is None:
                continue
            event = Event(Subject.meter(meter_id), f"offline:{last_seen}", "meter_offline", m.property_id,
                          format_time(now), message="表计离线",
                          data={"last_seen": last_seen, "meter_id": meter_id, "account_id": m.account_id,
                                "site_id": m.site_id})
            if self.meters.set_meter_offline(meter_id, last_seen, event):
                offline += 1
                offline_sites.add(m.site_id)
        observability.count("BridgesOffline", len(offline_sites))
        result = {"cuts": cuts, "expired": expired, "offline": offline, "resent": resent, "reconciled": reconciled}
        log.info("control tick", **result)
        return result
