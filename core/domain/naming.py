"""Names of things: resource names (feikong-<stage>-<name>) and the one rule for ids.

Every id that comes from outside (property, building, floor, room, tenant, account,
meter, site, bus, model, openid) and every ledger entry id passes `require_id`. The store
builds keys by joining ids with `#` (`ROOM#<building>#<room>`, `<property>#<building>`)
and queries them by prefix, so an id holding `#` could read another building's rows;
`|` breaks WeChat Pay's signing of query URLs, `/` breaks URL paths, and control
characters break logs and headers. Hence a closed charset and a bounded length.
"""

from __future__ import annotations

from core.domain.errors import ValidationError
from core.protocol.ids import DERIVED_ID_MAX, ID_CHARS, ID_MAX, id_problem  # the rule lives with the protocol

__all__ = ["DERIVED_ID_MAX", "ID_CHARS", "ID_MAX", "SERVICE", "id_problem", "require_id", "resource_name"]

SERVICE = "feikong"


def resource_name(name: str, stage: str) -> str:
    """feikong-<stage>-<name>. The stage is a setting (core/settings.py: `resource_name`
    reads it); the domain reads no environment."""
    return f"{SERVICE}-{stage}-{name}"


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
