"""Names of things: resource names (feikong-<stage>-<name>) and the one rule for ids.

Every id that comes from outside (property, building, floor, room, tenant, account,
meter, site, bus, model, openid) and every ledger entry id passes `require_id`. The store
builds keys by joining ids with `#` (`ROOM#<building>#<room>`, `<property>#<building>`)
and queries them by prefix, so an id holding `#` could read another building's rows;
`|` breaks WeChat Pay's signing of query URLs, `/` breaks URL paths, and control
characters break logs and headers. Hence a closed charset and a bounded length.
"""

from __future__ import annotations

import os
import re

from core.domain.errors import ValidationError

SERVICE = "feikong"

ID_MAX = 64  # ids chosen by people or systems (entities, openids)
DERIVED_ID_MAX = 200  # ids composed from other ids (ledger entries: "use:<meter>:<seq>")
ID_CHARS = "A-Za-z0-9_.:@-"
_ID_RE = re.compile(rf"[A-Za-z0-9][{ID_CHARS}]*")


def stage() -> str:
    return os.environ.get("FEIKONG_STAGE", "dev")


def resource_name(name: str) -> str:
    return f"{SERVICE}-{stage()}-{name}"


def id_problem(value: object, max_len: int = ID_MAX) -> str | None:
    """Why value is not a valid id ("id_empty" or "id_invalid"), or None."""
    if not isinstance(value, str) or not value.strip():
        return "id_empty"
    if len(value) > max_len or not _ID_RE.fullmatch(value):
        return "id_invalid"
    return None


def require_id(value: object, field: str, max_len: int = ID_MAX) -> str:
    """The id rule: 1..max_len characters of letters, digits and _ . : @ -, starting with
    a letter or digit. Anything else (`#`, `|`, `/`, spaces, control characters, other
    scripts) is a 400 naming the field."""
    problem = id_problem(value, max_len)
    if problem == "id_empty":
        raise ValidationError(f"{field} 不能为空", code="id_empty", field=field)
    if problem:
        raise ValidationError(
            f"{field} 只能包含字母、数字和 _ . : @ -，以字母或数字开头，且不超过 {max_len} 个字符",
            code="id_invalid",
            field=field,
        )
    return value
