"""Property settings (物业设置, docs/console.md "Property settings"): the protected windows
of supply and the grace delay before a cut, read fresh from the store and written through
core/services/control.py `set_protection`, each change recorded in the action log.

The control service caches protection settings for 60 s per process (`control._protection`);
`set_protection` clears this process's cache, so this process decides with the new settings
at once; other processes (Lambda containers, other app workers) see them within 60 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.control import ProtectionSettings
from core.domain.directory import Property
from core.domain.errors import NotFound, ValidationError
from core.domain.naming import require_id
from core.services import action_log, control
from core.store import directory as dstore
from core.store import tariffs as tariffs_store

CACHE_SECONDS = 60  # control._protection's time limit: other processes see a change within this


@dataclass(frozen=True)
class ProtectionView:
    property: Property
    settings: ProtectionSettings
    protected_now: bool
    next_allowed: datetime | None  # the next moment a cut may happen (None: always protected)


def property_of(property_id: str) -> Property:
    p = dstore.get_property(require_id(property_id, "property_id"))
    if p is None:
        raise NotFound("物业不存在", code="property_not_found", property_id=property_id)
    return p


def timezone_of(p: Property) -> str:
    return p.timezone or "Asia/Shanghai"


def protection(property_id: str) -> ProtectionSettings:
    """The stored settings, read now (not the control service's cache); the defaults
    (night 22:00-08:00, holidays) while none are stored."""
    return ProtectionSettings.from_dict(tariffs_store.get_protection(property_id))


def view(property_id: str, now: datetime | None = None) -> ProtectionView:
    p = property_of(property_id)
    s = protection(property_id)
    now = now or utcnow()
    try:
        nxt = s.next_allowed(now)
    except ValidationError:
        nxt = None
    return ProtectionView(p, s, s.protected(now), nxt)


def update_protection(who: AdminPrincipal, property_id: str, new: ProtectionSettings, ip: str = "",
                      clock: Clock = utcnow) -> tuple[ProtectionSettings, bool]:
    """Store `new` (checked by core/domain/property_settings.py) and record the change
    with before and after; (settings, changed). Saving what is stored changes nothing
    and records nothing."""
    property_of(property_id)
    before = protection(property_id)
    if new.to_dict() == before.to_dict():
        return before, False
    after = control.set_protection(property_id, new.to_dict())  # clears this process's cache
    action_log.record(who, "protection_settings", property_id=property_id, target=f"property:{property_id}",
                      before=before.to_dict(), after=after.to_dict(), ip=ip, clock=clock)
    return after, True
