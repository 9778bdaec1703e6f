"""A tenant's alarm preferences for one account (per WeChat user and account): a personal
low-balance reminder amount, the channels to be told on, and quiet hours.

Stored now and read back; the notifications issue sends by them (docs/tenant-api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.domain.errors import ValidationError
from core.domain.money import MAX_POSTING_FEN

CHANNELS = ("subscribe", "template", "sms")  # mini-program subscribe message, official-account template, SMS
CHANNEL_NAMES = {"subscribe": "小程序订阅消息", "template": "公众号模板消息", "sms": "短信"}
DEFAULT_CHANNELS = ("subscribe",)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
FIELDS = {"low_balance_fen", "channels", "quiet_hours"}


@dataclass(frozen=True)
class AlarmPrefs:
    low_balance_fen: int | None = None
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    quiet_start: str | None = None  # "HH:MM"; with quiet_end, may span midnight (22:00-07:00)
    quiet_end: str | None = None

    def as_json(self) -> dict:
        quiet = {"start": self.quiet_start, "end": self.quiet_end} if self.quiet_start else None
        return {"low_balance_fen": self.low_balance_fen, "channels": list(self.channels), "quiet_hours": quiet}


def _hhmm(value: object, field: str) -> str:
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        raise ValidationError("免打扰时间必须是 HH:MM（00:00–23:59）", code="time_invalid", field=field)
    return value


def parse(body: object) -> AlarmPrefs:
    """The whole preferences from a PUT body (every field given, nothing else). Bad input
    is a 400 naming the field."""
    if not isinstance(body, dict):
        raise ValidationError("请求体必须是 JSON 对象", code="body_invalid")
    unknown = set(body) - FIELDS
    if unknown:
        raise ValidationError(f"未知字段: {', '.join(sorted(unknown))}", code="field_unknown")
    missing = FIELDS - set(body)
    if missing:
        raise ValidationError(f"缺少字段: {', '.join(sorted(missing))}", code="field_missing")
    low = body["low_balance_fen"]
    if low is not None:
        if isinstance(low, bool) or not isinstance(low, int):
            raise ValidationError("提醒金额必须是以分为单位的整数", code="amount_not_integer", field="low_balance_fen")
        if not 0 <= low <= MAX_POSTING_FEN:
            raise ValidationError("提醒金额必须在 0 到 1000000 元之间", code="amount_invalid", field="low_balance_fen")
    channels = body["channels"]
    if not isinstance(channels, list) or any(not isinstance(c, str) for c in channels):
        raise ValidationError("通知渠道必须是列表", code="channels_invalid", field="channels")
    bad = [c for c in channels if c not in CHANNELS]
    if bad:
        raise ValidationError(f"未知的通知渠道: {', '.join(bad)[:60]}（可选 subscribe、template、sms）",
                              code="channel_invalid", field="channels")
    if len(set(channels)) != len(channels):
        raise ValidationError("通知渠道不能重复", code="channels_invalid", field="channels")
    quiet = body["quiet_hours"]
    start = end = None
    if quiet is not None:
        if not isinstance(quiet, dict) or set(quiet) != {"start", "end"}:
            raise ValidationError("免打扰时段必须是 {start, end} 或 null", code="quiet_hours_invalid",
                                  field="quiet_hours")
        start, end = _hhmm(quiet["start"], "quiet_hours.start"), _hhmm(quiet["end"], "quiet_hours.end")
        if start == end:
            raise ValidationError("免打扰的开始和结束时间不能相同", code="quiet_hours_empty", field="quiet_hours")
    ordered = tuple(c for c in CHANNELS if c in channels)  # one canonical order
    return AlarmPrefs(low, ordered, start, end)


def in_quiet_hours(prefs: AlarmPrefs, hhmm: str) -> bool:
    """Whether a local time of day (HH:MM) falls in the quiet hours: start inclusive, end
    exclusive; a window whose end is before its start spans midnight."""
    if not prefs.quiet_start or not prefs.quiet_end:
        return False
    s, e = prefs.quiet_start, prefs.quiet_end
    return s <= hhmm < e if s < e else hhmm >= s or hhmm < e
