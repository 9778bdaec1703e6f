"""Events: the audit trail of anomalies, alarms, commands, payment alerts and mismatches.

Services create `Event`s; only core/store knows how they are kept (the events table's
`scope` and `event_id`). Every event has a subject (what it is about) and an id that is
deterministic from its cause, so that recording the same cause twice is one event: the
store writes an event only if its (subject, event_id) is absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SubjectKind(StrEnum):
    METER = "meter"
    ACCOUNT = "account"
    SITE = "site"
    PAYMENTS = "payments"  # a property's payment alerts
    RECONCILE = "reconcile"  # a day's reconciliation with WeChat Pay's trade bill
    NOTICE = "notice"  # news for an account's tenants only (core/domain/tenant_feed.py): payment credited...


@dataclass(frozen=True)
class Subject:
    """What an event is about: a meter, an account, a site, a property's payments, a bill day."""

    kind: SubjectKind
    id: str

    @classmethod
    def meter(cls, meter_id: str) -> Subject:
        return cls(SubjectKind.METER, meter_id)

    @classmethod
    def account(cls, account_id: str) -> Subject:
        return cls(SubjectKind.ACCOUNT, account_id)

    @classmethod
    def site(cls, site_id: str) -> Subject:
        return cls(SubjectKind.SITE, site_id)

    @classmethod
    def payments(cls, property_id: str) -> Subject:
        return cls(SubjectKind.PAYMENTS, property_id)

    @classmethod
    def reconcile(cls, bill_date: str) -> Subject:
        return cls(SubjectKind.RECONCILE, bill_date)

    @classmethod
    def notice(cls, account_id: str) -> Subject:
        return cls(SubjectKind.NOTICE, account_id)


@dataclass(frozen=True)
class Event:
    """One recorded event. `event_id` is unique per subject and deterministic from the
    cause (`alarm:1:…`, `command:<id>`, `anomaly:<seq>:<kind>`); `status` is "" for a
    plain record, else where a person or a notifier stands with it (open, to_notify…)."""

    subject: Subject
    event_id: str
    type: str
    property_id: str
    at: str
    status: str = ""
    message: str = ""
    data: dict = field(default_factory=dict)



# --- events that someone is told about (issue 13, docs/notifications.md "Producers and logs") ---
#
# Every condition a person is told about is recorded as an event where it is detected (in
# the transaction or write already happening there); the notification pipeline reads the
# recorded events (core/domain/notifications.py `notice_of`), never the producing path.
# Each carries property_id and, for a tenant's or an account's event, data["account_id"];
# amounts in fen (int), times UTC ISO 8601. Recorded type (subject): data.
#
# tenants
#   low_balance (account): level, threshold, balance, occurrence, account_id — control.alarm_event
#   cut_imminent (account): balance, cut_line, due_at — a cut became pending (grace or protected window)
#   command TRIP / CLOSE (meter): op, cause, account_id — the cut and the restore (tenant_feed.py)
#   payment_credited (notice): amount, balance_after, out_trade_no, paid_at — in the credit's transaction
#   refund_done (notice): amount, out_refund_no, out_trade_no — WeChat reported the refund SUCCESS
#   meter_offline_long (meter): account_id, meter_id, last_seen, hours — outages.check
#   bill_issued (notice): account_id, bill_id, period, issued_by — in the write that issues the bill
#   bill_due_soon, bill_overdue (notice): account_id, bill_id, period, day, due, days, outstanding,
#     late_fee_total — the daily sweep (core/services/bills.py Bills.remind; core/domain/bills.py)
# admins
#   meter_offline (meter): meter_id, account_id, site_id, last_seen — the control tick
#   bridge_offline (site): site_id, site_name, last_seen — outages.check; bridge_online when it returns
#   command_failing (meter): meter_id, account_id, site_id, op, intended, reported, attempts, command_id
#   anomaly with status "open" (meter): kind, seq, account_id, proposal — awaiting review
#   reconcile_day (reconcile#<date>): bill_date, count, kinds, their_fen, our_fen, orders — one per
#     property and day with mismatches (the per-order `reconcile_mismatch` records are the detail)
#   refund_request (account): request_id, amount, reason, building_id, room_id — a tenant filed one

TENANT_TYPES = ("low_balance", "cut_imminent", "command", "payment_credited", "refund_done", "meter_offline_long",
                "bill_issued", "bill_due_soon", "bill_overdue")
ADMIN_TYPES = ("meter_offline", "bridge_offline", "command_failing", "anomaly", "reconcile_day", "refund_request")
