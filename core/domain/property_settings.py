"""Property settings (物业设置, docs/console.md "Property settings"): when supply may not
be cut (core/domain/control.py ProtectionSettings), as the console's form and the admin
API's JSON give it, each bad value refused with a Chinese message naming the field.

- night window: start and end "HH:MM" (00:00-23:59; an end before the start crosses
  midnight), or none; start and end may not be equal (an empty window);
- weekends, holidays: no cut on those day types (core/domain/calendar.py);
- grace minutes: 0..1440, the delay between crossing the cut line and the cut.
The time zone is the property's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from core.domain.control import ProtectionSettings
from core.domain.errors import ValidationError

GRACE_MAX = 24 * 60  # minutes
TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
FIELDS = ("night", "weekends", "holidays", "grace_minutes")
TRUE_VALUES = ("1", "on", "true", "yes")


def time_of_day(value: object, field: str, label: str) -> time:
    m = TIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ValidationError(f"{label}格式应为 HH:MM（00:00 至 23:59）", code="time_invalid", field=field)
    return time(int(m.group(1)), int(m.group(2)))


def grace_minutes(value: object) -> int:
    """0..1440 minutes: an int (JSON) or its decimal digits (a form)."""
    message = f"宽限时间必须是 0 到 {GRACE_MAX} 之间的整数（分钟）"
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"-?\d{1,6}", text):
            raise ValidationError(message, code="grace_invalid", field="grace_minutes")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= GRACE_MAX:
        raise ValidationError(message, code="grace_invalid", field="grace_minutes")
    return value


def settings(night: tuple[object, object] | None, weekends: bool, holidays: bool, grace: object,
             timezone: str) -> ProtectionSettings:
    window = None
    if night is not None:
        start = time_of_day(night[0], "night_start", "夜间保护开始时间")
        end = time_of_day(night[1], "night_end", "夜间保护结束时间")
        if start == end:
            raise ValidationError("夜间保护的开始与结束时间不能相同", code="night_empty", field="night_end")
        window = (start, end)
    ZoneInfo(timezone)
    return ProtectionSettings(window, weekends, holidays, timedelta(minutes=grace_minutes(grace)), timezone)


def from_form(form: Mapping[str, str], timezone: str) -> ProtectionSettings:
    """The settings page's form: night_enabled, night_start, night_end (checkbox and two
    times), weekends, holidays (checkboxes), grace_minutes."""

    def checked(name: str) -> bool:
        return str(form.get(name, "")).strip().lower() in TRUE_VALUES

    night = (form.get("night_start", ""), form.get("night_end", "")) if checked("night_enabled") else None
    return settings(night, checked("weekends"), checked("holidays"), form.get("grace_minutes", ""), timezone)


def from_json(body: Mapping[str, object], timezone: str) -> ProtectionSettings:
    """The API's body: {"night": ["22:00", "08:00"] | null, "weekends": bool, "holidays": bool,
    "grace_minutes": int}, every field required (a PUT replaces the settings)."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValidationError(f"未知字段：{', '.join(unknown)}", code="field_unknown", field=unknown[0])
    missing = [f for f in FIELDS if f not in body]
    if missing:
        raise ValidationError(f"缺少字段：{', '.join(missing)}", code="field_missing", field=missing[0])
    night = body["night"]
    if night is not None and not (isinstance(night, list) and len(night) == 2):
        raise ValidationError("night 必须是 [开始, 结束]（如 [\"22:00\", \"08:00\"]）或 null", code="night_invalid",
                              field="night")
    for name in ("weekends", "holidays"):
        if not isinstance(body[name], bool):
            raise ValidationError(f"{name} 必须是 true 或 false", code="flag_invalid", field=name)
    grace = body["grace_minutes"]
    if isinstance(grace, str):  # JSON wants a number, not the form's text
        raise ValidationError(f"宽限时间必须是 0 到 {GRACE_MAX} 之间的整数（分钟）", code="grace_invalid",
                              field="grace_minutes")
    return settings(tuple(night) if night is not None else None, body["weekends"], body["holidays"],  # type: ignore[arg-type]
                    grace, timezone)
