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
