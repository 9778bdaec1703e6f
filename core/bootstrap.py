"""The one place that wires services to their dependencies.

`build()` gives the real ones (the DynamoDB store modules, the WeChat Pay client, the
site queues) unless told otherwise; unit tests pass `testkit.fakes.InMemoryStore().repos`
and plain callables instead, so every use case runs in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.domain.clock import Clock, utcnow
from core.domain.control import ProtectionSettings
from core.domain.directory import Site
from core.domain.tariff import Plan
from core.integrations.wechatpay import WeChatPayClient
from core.services import control as control_service
from core.services import tariffs
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import commands, directory, events, meters, payments, unit
from core.store import ledger as ledger_store
from core.store.ledger import LedgerRepository, LedgerStore


@dataclass(frozen=True)
class Repositories:
    """The repositories the services use: modules of core.store, or objects with the same functions."""

    ledger: LedgerRepository
    accounts: object = ledger_store  # the account control fields (cut state, supply checks)
    meters: object = meters
    commands: object = commands
    events: object = events
    orders: object = payments
    directory: object = directory
    unit: object = unit

    @classmethod
    def real(cls) -> Repositories:
        return cls(ledger=LedgerStore())


@dataclass
class Services:
    ledger: LedgerService
    control: Control
    ingest: Ingest
    payments: Payments


def build(clock: Clock = utcnow, repos: Repositories | None = None, *, pay: WeChatPayClient | None = None,
          sites: Callable[[str], Site | None] = control_service.site,
          protection_of: Callable[[str], ProtectionSettings] = control_service.protection,
          plans: Callable[[str], Plan] = tariffs.plan, send: Callable[..., None] | None = None,
          cache_size: int | None = None) -> Services:
    r = repos or Repositories.real()
    ledger = LedgerService(r.ledger, clock, cache_size=cache_size)
    control = Control(ledger, clock, meters=r.meters, commands=r.commands, events=r.events, accounts=r.accounts,
                      directory=r.directory, sites=sites, protection_of=protection_of, send=send)
    ingest = Ingest(clock=clock, cache_size=cache_size, control=control, meters=r.meters, events=r.events,
                    unit=r.unit, plans=plans)
    payments_service = Payments(control, pay, clock, orders=r.orders, events=r.events, directory=r.directory)
    return Services(ledger, control, ingest, payments_service)
