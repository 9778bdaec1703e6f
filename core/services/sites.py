"""A site's signing keys (docs/bridge.md, "Site secrets and their rotation").

Each site has one secret in Secrets Manager (`feikong/<stage>/site/<site id>`, JSON
{"current", "previous"?}). The cloud signs commands with the current key and accepts a
site's messages signed with the current or, during a rotation, the previous key; the
bridge does the same with its `secret` and `previous_secret`. A rotation:

1. `rotate`: a new current key; the old one becomes previous (both verify);
2. the site's bridge gets `secret: <new>` and `previous_secret: <old>` and is restarted;
3. `finish`: the previous key is dropped; messages signed with it are refused.

Both steps are audited (a `site_secret` event on the site with the actor). Processes see
a change within the site cache's 60 s (core/services/control.py).
"""

from __future__ import annotations

import secrets as random
from dataclasses import replace

from core.domain.clock import Clock, utcnow
from core.domain.directory import Site
from core.domain.errors import Conflict, NotFound
from core.domain.events import Event, Subject
from core.domain.ledger import format_time
from core.domain.naming import require_id
from core.integrations import secrets
from core.integrations.secrets import SiteKeys
from core.settings import ProductionRefused, get_settings, placeholder_secret
from core.store import directory as dstore
from core.store import events as events_store


def new_key() -> str:
    return random.token_urlsafe(32)


def with_keys(site: Site | None) -> Site | None:
    """The site with its keys from Secrets Manager (read afresh: callers cache the site).
    On the prod stage a placeholder key is refused, not used."""
    if site is None:
        return None
    keys = secrets.site_keys(site.site_id, force=True)
    if get_settings().prod:
        bad = [k for k in (keys.current, keys.previous) if k and placeholder_secret(k)]
        if bad:
            raise ProductionRefused(f"site {site.site_id}: its secret holds a placeholder, not a key; rotate it")
    return replace(site, secret=keys.current, previous_secret=keys.previous)


def create_keys(site_id: str) -> SiteKeys:
    """A new site's secret (or, for a registration retried, the one made before)."""
    return secrets.create_site_keys(site_id, SiteKeys(new_key()))


def _site(site_id: str) -> Site:
    s = dstore.get_site(require_id(site_id, "site_id"))
    if s is None:
        raise NotFound("站点不存在", code="site_not_found", site_id=site_id)
    return s


def _audit(site: Site, step: str, actor: str, at: str, data: dict) -> None:
    events_store.put_event(Event(
        Subject.site(site.site_id), f"secret:{at}:{step}", "site_secret", site.property_id, at,
        message={"rotate": "网关密钥已轮换，旧密钥在轮换结束前仍然有效", "finish": "网关密钥轮换已结束，旧密钥失效"}[step],
        data={"step": step, "actor": actor, **data},
    ))


def _forget() -> None:
    from core.services import control

    control.forget_sites()


def rotate(site_id: str, actor: str, clock: Clock = utcnow) -> SiteKeys:
    """Start a rotation: a new current key, the old one kept as previous. Refused while
    a rotation is under way (its previous key may still be in a bridge's config)."""
    site = _site(site_id)
    keys = secrets.site_keys(site.site_id, force=True)
    if keys.previous:
        raise Conflict("上一次密钥轮换尚未结束，请先结束 (finish)", code="rotation_in_progress", site_id=site_id)
    new = SiteKeys(new_key(), previous=keys.current)
    secrets.put_site_keys(site.site_id, new)
    _audit(site, "rotate", require_id(actor, "actor"), format_time(clock()), {})
    _forget()
    return new


def finish(site_id: str, actor: str, clock: Clock = utcnow) -> SiteKeys:
    """End a rotation: the previous key stops verifying. Refused if none is under way."""
    site = _site(site_id)
    keys = secrets.site_keys(site.site_id, force=True)
    if not keys.previous:
        raise Conflict("没有进行中的密钥轮换", code="no_rotation", site_id=site_id)
    done = SiteKeys(keys.current)
    secrets.put_site_keys(site.site_id, done)
    _audit(site, "finish", require_id(actor, "actor"), format_time(clock()), {})
    _forget()
    return done


def status(site_id: str) -> dict:
    """Whether a rotation is under way (never the keys themselves)."""
    site = _site(site_id)
    keys = secrets.site_keys(site.site_id, force=True)
    return {"site_id": site.site_id, "rotating": bool(keys.previous),
            "secret_id": get_settings().site_secret_id(site.site_id)}
