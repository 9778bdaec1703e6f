"""Sites as the console reads them (docs/console.md "Sites"): the bridges' last heartbeat,
kept on the site's record in the `sites` table, and the commands in flight to a site's
meters. The site's identity (and registration) stays in core/store/directory.py."""

from __future__ import annotations

import json

from core.domain.control import OPEN_STATES, Command
from core.domain.directory import Site
from core.domain.events import Event
from core.domain.ledger import format_time, parse_time
from core.domain.sites import Heartbeat, heartbeat_from_figures
from core.store.commands import _command
from core.store.events import add_event
from core.store.models import CommandItem, SiteItem
from core.store.tx import Tx, update_if

MAX_OPEN = 500  # open commands looked at per page (all sites: commands stay open for minutes)


def _heartbeat_write(hb: Heartbeat):
    sent = format_time(hb.sent_at)
    cond = SiteItem.site_id.exists() & (SiteItem.heartbeat_sent_at.does_not_exist()
                                        | (SiteItem.heartbeat_sent_at < sent))
    actions = [
        SiteItem.heartbeat_at.set(format_time(hb.received_at)),
        SiteItem.heartbeat_sent_at.set(sent),
        SiteItem.heartbeat.set(json.dumps(hb.figures(), ensure_ascii=False, separators=(",", ":"))),
        SiteItem.watch_key.set(WATCH_KEY),  # watched for silence (stale_bridges)
    ]
    return actions, cond


def record_heartbeat(site_id: str, hb: Heartbeat) -> bool:
    """Keep `hb` as the site's last heartbeat unless one sent later is there already (the
    outbox may deliver an old one late) or the bridge is reported offline (then
    `record_heartbeat_back`). False if not kept (or the site is unknown)."""
    actions, cond = _heartbeat_write(hb)
    return update_if(SiteItem(site_id), actions, cond & SiteItem.offline_since.does_not_exist())


# --- the bridge watch (issue 13: core/services/outages.py) -------------------------------

WATCH_KEY = "ON"


def offline_since(site_id: str) -> tuple[str, str] | None:
    """(property_id, offline_since) of a site whose bridge is reported offline, else None."""
    try:
        i = SiteItem.get(site_id, consistent_read=True)
    except SiteItem.DoesNotExist:
        return None
    return (i.property_id, i.offline_since) if i.offline_since else None


def record_heartbeat_back(site_id: str, hb: Heartbeat, since: str, event: Event) -> bool:
    """The first heartbeat after an outage: kept, the outage ended and `event` recorded in
    one transaction, if the outage is still the one that began at `since`."""
    actions, cond = _heartbeat_write(hb)
    tx = Tx()
    tx.update(SiteItem(site_id), [*actions, SiteItem.offline_since.remove()], cond & (SiteItem.offline_since == since),
              tag="site")
    add_event(tx, event)
    return tx.commit() is None


def stale_bridges(cutoff: str, limit: int = 200) -> list[tuple[str, str]]:
    """(site_id, heartbeat_at) of watched sites whose last heartbeat arrived before cutoff."""
    return [(i.site_id, i.heartbeat_at)
            for i in SiteItem.by_watch.query(WATCH_KEY, SiteItem.heartbeat_at < cutoff, limit=limit)]


def mark_bridge_offline(site_id: str, heartbeat_at: str, event: Event) -> bool:
    """Report the bridge offline (with its event) if no heartbeat arrived since
    heartbeat_at. False if one did, or it was reported before."""
    tx = Tx()
    tx.update(SiteItem(site_id), [SiteItem.watch_key.remove(), SiteItem.offline_since.set(heartbeat_at)],
              (SiteItem.heartbeat_at == heartbeat_at) & SiteItem.watch_key.exists(), tag="site")
    add_event(tx, event)
    return tx.commit() is None


def site_record(site_id: str) -> Site | None:
    try:
        return _site(SiteItem.get(site_id))
    except SiteItem.DoesNotExist:
        return None


def _heartbeat(i: SiteItem) -> Heartbeat | None:
    if not i.heartbeat_at or not i.heartbeat:
        return None
    try:
        figures = json.loads(i.heartbeat)
    except ValueError:
        figures = {}
    return heartbeat_from_figures(parse_time(i.heartbeat_at, "heartbeat_at"),
                                  parse_time(i.heartbeat_sent_at or i.heartbeat_at, "heartbeat_sent_at"),
                                  figures if isinstance(figures, dict) else {})


def _site(i: SiteItem) -> Site:
    return Site(i.site_id, i.property_id, i.name, down_queue=i.down_queue or "")


def sites_with_heartbeats(property_id: str) -> list[tuple[Site, Heartbeat | None]]:
    """The property's sites with their last heartbeat: one query."""
    rows = [(_site(i), _heartbeat(i)) for i in SiteItem.by_property.query(property_id)]
    return sorted(rows, key=lambda r: r[0].site_id)


def last_heartbeat(site_id: str) -> Heartbeat | None:
    try:
        return _heartbeat(SiteItem.get(site_id, consistent_read=True))
    except SiteItem.DoesNotExist:
        return None


def open_commands_of_sites(site_ids: set[str], now_iso: str) -> list[Command]:
    """Queued or sent commands, not expired, to meters of `site_ids`, oldest first: the
    sparse open-commands index (keys only) and one batch read."""
    ids = [i.command_id for i in CommandItem.by_open.query("OPEN", CommandItem.expires_at >= now_iso,
                                                          limit=MAX_OPEN)]
    found = [i for i in CommandItem.batch_get(ids, consistent_read=True) if i.site_id in site_ids and i.state in OPEN_STATES] if ids else []
    return sorted((_command(i) for i in found), key=lambda c: (c.issued_at, c.command_id))
