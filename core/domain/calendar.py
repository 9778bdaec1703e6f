"""Day types for tariffs and protection windows: workday, weekend, statutory holiday.

China's calendar comes from maintained libraries, never a hand-typed list:
`chinesecalendar` (statutory holidays *and* the adjusted working days, 调休) for the
years it covers, then `holidays` (statutory holidays; weekends by weekday) beyond them.
Both are imported on the first day asked about, not with this module: `holidays` alone
costs ~0.1 s of a cold start, and most entry points never rate a reading.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

WORKDAY = "workday"
WEEKEND = "weekend"
HOLIDAY = "holiday"
DAY_TYPES = (WORKDAY, WEEKEND, HOLIDAY)


@lru_cache(maxsize=4096)
def day_type(d: date) -> str:
    import chinese_calendar

    try:
        is_off, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        if d in _statutory(d.year):
            return HOLIDAY
        return WEEKEND if d.weekday() >= 5 else WORKDAY
    if not is_off:
        return WORKDAY  # including a weekend day made a working day (调休)
    return HOLIDAY if name else WEEKEND


@lru_cache(maxsize=64)
def _statutory(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.China(years=year).keys())
