"""The one rule for ids (sites, meters, accounts, ...), shared by the cloud and the bridge.

1..max_len characters of letters, digits and `_ . : @ -`, starting with a letter or digit.
core.domain.naming builds its `require_id` (the cloud's 400 errors) on `id_problem`;
the bridge checks its configured site id with it at start.
"""

from __future__ import annotations

import re

ID_MAX = 64  # ids chosen by people or systems (entities, openids)
DERIVED_ID_MAX = 200  # ids composed from other ids (ledger entries: "use:<meter>:<seq>")
ID_CHARS = "A-Za-z0-9_.:@-"
_ID_RE = re.compile(rf"[A-Za-z0-9][{ID_CHARS}]*")


def id_problem(value: object, max_len: int = ID_MAX) -> str | None:
    """Why value is not a valid id ("id_empty" or "id_invalid"), or None."""
    if not isinstance(value, str) or not value.strip():
        return "id_empty"
    if len(value) > max_len or not _ID_RE.fullmatch(value):
        return "id_invalid"
    return None
