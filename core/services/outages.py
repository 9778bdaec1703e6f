"""Outages found by the minute's schedule (issue 13, docs/notifications.md "Producers and logs").

- **Bridges**: a site whose last heartbeat arrived more than `ONLINE_WINDOW` ago (three
  missed heartbeats: core/domain/sites.py, the console's online rule) is reported offline
  once per outage: a `bridge_offline` event (admins) written with the site's change, id
  `offline:<last heartbeat>`. The first heartbeat afterwards ends the outage with a
  `bridge_online` event in the same transaction (core/services/site_status.py).
- **Meters offline for long**: a meter marked offline (the control tick, after
  `FEIKONG_OFFLINE_MINUTES`) and still silent after the reading-gap limit
  (`FEIKONG_MAX_GAP_HOURS`, default 6 h: its next reading will wait for an admin's review)
  gives its account's tenants a `meter_offline_long` event (on the meter, with the
  account), once per outage.

Both read a sparse index holding only what is watched, so a quiet minute costs two queries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from core.domain.clock import Clock, utcnow
from core.domain.events import Event, Subject
from core.domain.ledger import format_time
from core.domain.rating import DEFAULT_MAX_GAP
from core.domain.sites import ONLINE_WINDOW
from core.settings import get_settings
from core.store import meters as meters_store
from core.store import sites as sites_store

log = Logger(service="feikong", child=True)


def offline_long_after() -> timedelta:
    hours = get_settings().max_gap_hours
    return timedelta(hours=hours) if hours else DEFAULT_MAX_GAP


def bridge_online_event(site_id: str, property_id: str, since: str, at: datetime) -> Event:
    return Event(Subject.site(site_id), f"online:{since}", "bridge_online", property_id, format_time(at),
                 message="网关已恢复连接", data={"site_id": site_id, "offline_since": since})


def check(clock: Clock = utcnow) -> dict:
    """Report bridges gone silent and meters silent for long; each once per outage."""
    now = clock()
    bridges = 0
    for site_id, heartbeat_at in sites_store.stale_bridges(format_time(now - ONLINE_WINDOW)):
        site = sites_store.site_record(site_id)
        if site is None:
            continue
        event = Event(Subject.site(site_id), f"offline:{heartbeat_at}", "bridge_offline", site.property_id,
                      format_time(now), status="to_notify", message=f"网关 {site.name or site_id} 离线",
                      data={"site_id": site_id, "site_name": site.name, "last_seen": heartbeat_at})
        if sites_store.mark_bridge_offline(site_id, heartbeat_at, event):
            bridges += 1
            log.warning("bridge offline", site_id=site_id, last_heartbeat_at=heartbeat_at)
    meters = 0
    long_after = offline_long_after()
    for meter_id, last_seen in meters_store.offline_long_meters(format_time(now - long_after)):
        m = meters_store.load_meter(meter_id)
        event = None
        if m is not None and m.account_id and not m.retired:
            event = Event(Subject.meter(meter_id), f"offline_long:{last_seen}", "meter_offline_long",
                          m.property_id, format_time(now), status="to_notify", message="表计长时间离线",
                          data={"account_id": m.account_id, "meter_id": meter_id, "last_seen": last_seen,
                                "hours": round(long_after.total_seconds() / 3600, 1)})
        if meters_store.note_offline_long(meter_id, last_seen, event) and event is not None:
            meters += 1
    return {"bridges_offline": bridges, "meters_offline_long": meters}
