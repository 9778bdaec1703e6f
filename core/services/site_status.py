"""Sites and bridges for the console (站点网关, docs/console.md "Sites").

- `record_heartbeat`: the uplink consumer keeps each bridge's last heartbeat on its site.
- `overview`: per site its online state, last heartbeat and figures, meters per bus,
  commands in flight and whether a key rotation is under way.
- `register`, `rotate`, `finish`: the console's site actions, through the same services
  as the seed and `python -m cli.sites` (core/services/directory.py, sites.py), each
  recorded in the action log with the admin, never with a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from core.domain import sites as rules
from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.control import Command
from core.domain.directory import Site
from core.domain.errors import NotFound, ValidationError
from core.domain.ledger import format_time
from core.domain.naming import ID_MAX, id_problem, require_id
from core.integrations.secrets import SiteKeys
from core.services import action_log
from core.services import sites as site_keys
from core.store import directory as dstore
from core.store import sites as store

MAX_SITE_NAME = 64


@dataclass(frozen=True)
class SiteOverview:
    site: Site
    heartbeat: rules.Heartbeat | None
    online: bool
    rotating: bool
    buses: list[rules.BusView] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    @property
    def meter_count(self) -> int:
        return sum(len(b.meter_ids) for b in self.buses)


def record_heartbeat(msg: dict, received_at: datetime) -> bool:
    """Keep a verified `heartbeat` message as its site's last (an older one arriving late
    is not kept). Returns whether it was kept."""
    try:
        sent_at = datetime.fromisoformat(str(msg.get("sent_at")).replace("Z", "+00:00"))
    except ValueError:
        sent_at = received_at
    if sent_at.tzinfo is None or sent_at > received_at:  # a bridge clock ahead of ours orders by ours
        sent_at = received_at
    hb = rules.heartbeat_from_figures(received_at, sent_at, msg)
    if store.record_heartbeat(msg["site_id"], hb):
        return True
    # refused: an older heartbeat, or the first after an outage (issue 13: the bridge is back)
    down = store.offline_since(msg["site_id"])
    if down is None:
        return False
    from core.services import outages

    return store.record_heartbeat_back(msg["site_id"], hb, down[1],
                                       outages.bridge_online_event(msg["site_id"], down[0], down[1], received_at))


def overview(property_id: str, clock: Clock = utcnow) -> list[SiteOverview]:
    """Every site of the property, by site id."""
    require_id(property_id, "property_id")
    now = clock()
    rows = store.sites_with_heartbeats(property_id)
    commands = store.open_commands_of_sites({s.site_id for s, _ in rows}, format_time(now)) if rows else []
    out = []
    for s, hb in rows:
        meters = [(m.meter_id, m.bus) for m in dstore.meters_of_site(s.site_id) if not m.retired]
        out.append(SiteOverview(
            site=s, heartbeat=hb, online=rules.online(hb, now), rotating=site_keys.status(s.site_id)["rotating"],
            buses=rules.buses_of(meters, hb), commands=[c for c in commands if c.site_id == s.site_id],
        ))
    return out


def site_of(property_id: str, site_id: str) -> Site:
    """The property's site (404 for a site of another property: it does not exist here)."""
    s = dstore.get_site(require_id(site_id, "site_id"))
    if s is None or s.property_id != property_id:
        raise NotFound("站点不存在", code="site_not_found", site_id=site_id)
    return s


def register(who: AdminPrincipal, property_id: str, site_id: str, name: str, ip: str = "") -> Site:
    """Register a site (its down queue and key made); returned with its key, which is
    shown once for the bridge's config and is not recorded."""
    from core.services import directory

    if id_problem(site_id) == "id_empty":
        raise ValidationError("请填写站点编号", code="id_empty", field="site_id")
    if id_problem(site_id):
        raise ValidationError(f"站点编号只能包含字母、数字和 _ . : @ -，以字母或数字开头，且不超过 {ID_MAX} 个字符",
                              code="id_invalid", field="site_id")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("请填写站点名称", code="field_required", field="name")
    if len(name.strip()) > MAX_SITE_NAME:
        raise ValidationError(f"站点名称不能超过 {MAX_SITE_NAME} 个字符", code="field_too_long", field="name")
    s = directory.register_site(property_id, site_id, name.strip())
    action_log.record(who, rules.ACTION_SITE_REGISTERED, property_id=property_id, target=f"site:{s.site_id}",
                      after={"site_id": s.site_id, "name": s.name}, ip=ip)
    return s


def rotate(who: AdminPrincipal, property_id: str, site_id: str, ip: str = "", clock: Clock = utcnow) -> SiteKeys:
    """Start a key rotation (cli/sites.py `rotate`): the new key and the old one, both to
    be put in the bridge's config."""
    s = site_of(property_id, site_id)
    keys = site_keys.rotate(s.site_id, who.admin_id, clock)
    action_log.record(who, rules.ACTION_SECRET_ROTATED, property_id=property_id, target=f"site:{s.site_id}",
                      before={"rotating": False}, after={"rotating": True}, ip=ip, clock=clock)
    return keys


def finish(who: AdminPrincipal, property_id: str, site_id: str, ip: str = "", clock: Clock = utcnow) -> None:
    """End a key rotation (cli/sites.py `finish`): the old key is refused from now on."""
    s = site_of(property_id, site_id)
    site_keys.finish(s.site_id, who.admin_id, clock)
    action_log.record(who, rules.ACTION_SECRET_FINISHED, property_id=property_id, target=f"site:{s.site_id}",
                      before={"rotating": True}, after={"rotating": False}, ip=ip, clock=clock)


def without_key(s: Site) -> Site:
    return replace(s, secret="", previous_secret="")
