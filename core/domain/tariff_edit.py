"""Editing tariff plans (the console's 电价方案 forms, docs/console.md "Tariffs"): a plan
version as form fields and back, the checks a form gets in words an admin understands,
and the revision rule that keeps bills already rated unchanged.

Pure: no I/O. The plan document itself is validated by core.domain.tariff.parse_plan.

Revision rule (check_revision): a stored plan may gain versions and its future versions may
change, but a version already in force (effective before now + the allowed clock skew of a
read time) is never changed or removed, and no new version may start before then: readings
rated so far were rated by the versions in force at their time, and stay so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from core.domain.calendar import DAY_TYPES
from core.domain.errors import ValidationError
from core.domain.tariff import CYCLES, MINUTES_PER_DAY, PERIOD_NAMES, PERIODS, Plan

FORM_PERIODS = ("sharp", "peak", "flat", "valley", "deep_valley")
INTERVAL_ROWS = 10  # time ranges offered by the form
BAND_ROWS = 4
COMPONENT_ROWS = 3
_PRICE = re.compile(r"^\d{1,4}(\.\d{1,4})?$")
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_LOCAL = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")
DEFAULT_TOU = (  # a common daily schedule offered to a new time-of-use plan
    ("00:00", "08:00", "valley"), ("08:00", "10:00", "flat"), ("10:00", "12:00", "peak"),
    ("12:00", "17:00", "flat"), ("17:00", "19:00", "sharp"), ("19:00", "22:00", "peak"),
    ("22:00", "24:00", "valley"),
)


class FormErrors(ValidationError):
    """Errors of a form, per field (`errors`: field name -> message); the message is the first."""

    status = 422
    code = "form_invalid"

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors.values()))
        super().__init__(first, code="form_invalid", fields=errors)
        self.errors = errors


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_local_time(text: str, tz: ZoneInfo) -> datetime | None:
    """A form's datetime-local value ("2026-12-01T08:00") in the plan's time zone, or an
    ISO time with an offset; None if it is neither."""
    text = (text or "").strip()
    if not text:
        return None
    for fmt in _LOCAL:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def local_input(t: datetime | str, tz: ZoneInfo) -> str:
    """A time as a datetime-local form value in the plan's time zone."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t.replace("Z", "+00:00"))
    return t.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def _price(f: Mapping[str, str], name: str, errors: dict, label: str, required: bool) -> str | None:
    raw = (f.get(name) or "").strip()
    if not raw:
        if required:
            errors[name] = f"请填写{label}"
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        errors[name] = f"{label}不是有效的数字"
        return None
    if not value.is_finite():
        errors[name] = f"{label}不是有效的数字"
    elif value < 0:
        errors[name] = f"{label}不能为负数"
    elif not _PRICE.match(raw):
        errors[name] = f"{label}最多 4 位小数、不超过 9999 元"
    else:
        return raw
    return None


def version_from_form(f: Mapping[str, str], tz: ZoneInfo) -> dict:
    """A plan version document from the form's fields; raises FormErrors naming each field at fault.

    Fields: effective_from (datetime-local in the plan's time zone); mode "flat" (price: one price all day)
    or "tou" (price_<period> for the periods used, and rows iv_start_<i> / iv_end_<i> /
    iv_period_<i>: one daily schedule for every month and day type; an end before its start
    crosses midnight; 24:00 may end a range); tier_cycle "" / month / year with rows
    band_up_to_<i> / band_surcharge_<i> (the last band without up_to); components
    comp_code_<i> / comp_name_<i> / comp_price_<i>."""
    errors: dict[str, str] = {}
    eff = parse_local_time(f.get("effective_from", ""), tz)
    if eff is None:
        errors["effective_from"] = "请填写有效的生效时间"
    mode = f.get("mode", "flat")
    prices: dict[str, str] = {}
    schedules: list[dict] = []
    if mode == "flat":
        p = _price(f, "price", errors, "电价", True)
        if p is not None:
            prices["flat"] = p
    elif mode == "tou":
        intervals, spans = [], []
        for i in range(INTERVAL_ROWS):
            start, end = (f.get(f"iv_start_{i}") or "").strip(), (f.get(f"iv_end_{i}") or "").strip()
            period = (f.get(f"iv_period_{i}") or "").strip()
            if not start and not end:
                continue
            ms, me = _TIME.match(start), _TIME.match(end)
            if not ms or not me or start.startswith("24") and start != "24:00" or end.startswith("24") and end != "24:00":
                errors[f"iv_{i}"] = f"第 {i + 1} 行：时间格式应为 HH:MM（00:00–24:00）"
                continue
            if period not in FORM_PERIODS:
                errors[f"iv_{i}"] = f"第 {i + 1} 行：请选择时段"
                continue
            a = int(ms.group(1)) * 60 + int(ms.group(2))
            b = int(me.group(1)) * 60 + int(me.group(2))
            a = 0 if a == MINUTES_PER_DAY else a
            if a == b:
                errors[f"iv_{i}"] = f"第 {i + 1} 行：开始和结束时间相同"
                continue
            intervals.append({"start": start, "end": end, "period": period})
            if a < b:
                spans.append((a, b, i))
            else:  # crosses midnight
                spans.append((a, MINUTES_PER_DAY, i))
                if b:
                    spans.append((0, b, i))
        if not intervals and "iv_0" not in errors:
            errors["intervals"] = "分时电价至少需要一个时间段"
        elif not any(k.startswith("iv_") for k in errors):
            spans.sort()
            pos = 0
            for a, b, i in spans:
                if a < pos:
                    errors["intervals"] = f"第 {i + 1} 行与其他时间段在 {_hhmm(a)}–{_hhmm(min(b, pos))} 重叠"
                    break
                if a > pos:
                    errors["intervals"] = f"{_hhmm(pos)}–{_hhmm(a)} 没有设置时段（时间段须覆盖全天 24 小时）"
                    break
                pos = b
            else:
                if pos != MINUTES_PER_DAY:
                    errors["intervals"] = f"{_hhmm(pos)}–24:00 没有设置时段（时间段须覆盖全天 24 小时）"
        for period in dict.fromkeys(iv["period"] for iv in intervals):
            p = _price(f, f"price_{period}", errors, f"{PERIOD_NAMES[period]}时段电价", True)
            if p is not None:
                prices[period] = p
        schedules = [{"months": list(range(1, 13)), "day_types": list(DAY_TYPES), "intervals": intervals}]
        if len(prices) == 1 and not errors:
            # one price all day is a flat plan
            only = next(iter(prices))
            prices, schedules = {only: prices[only]}, []
    else:
        errors["mode"] = "请选择计价方式"
    version: dict = {"effective_from": eff.isoformat() if eff else "", "prices": prices}
    if schedules:
        version["schedules"] = schedules
    cycle = (f.get("tier_cycle") or "").strip()
    if cycle:
        if cycle not in CYCLES:
            errors["tier_cycle"] = "阶梯周期只能是按月或按年"
        bands, last = [], Decimal(0)
        rows = [i for i in range(BAND_ROWS)
                if (f.get(f"band_up_to_{i}") or "").strip() or (f.get(f"band_surcharge_{i}") or "").strip()]
        if len(rows) < 2:
            errors["bands"] = "阶梯至少需要两档"
        for n, i in enumerate(rows):
            up = (f.get(f"band_up_to_{i}") or "").strip()
            s = _price(f, f"band_surcharge_{i}", errors, f"第 {n + 1} 档加价", False) or "0"
            if n == len(rows) - 1:
                if up:
                    errors[f"band_up_to_{i}"] = "最后一档不设上限（请留空）"
                bands.append({"up_to": None, "surcharge": s})
                continue
            try:
                limit = Decimal(up)
            except InvalidOperation:
                limit = Decimal(-1)
            if not up or not limit.is_finite() or limit <= 0:
                errors[f"band_up_to_{i}"] = f"第 {n + 1} 档上限必须是正数"
                continue
            if limit <= last:
                errors[f"band_up_to_{i}"] = f"第 {n + 1} 档上限必须大于上一档"
            last = limit
            bands.append({"up_to": up, "surcharge": s})
        version["tiers"] = {"cycle": cycle, "bands": bands}
    components = []
    for i in range(COMPONENT_ROWS):
        code, name = (f.get(f"comp_code_{i}") or "").strip(), (f.get(f"comp_name_{i}") or "").strip()
        price_raw = (f.get(f"comp_price_{i}") or "").strip()
        if not (code or name or price_raw):
            continue
        if not re.match(r"^[a-z][a-z0-9_]{0,31}$", code):
            errors[f"comp_code_{i}"] = "附加费代码只能是小写字母、数字和下划线（如 sewage）"
        if not name:
            errors[f"comp_name_{i}"] = "请填写附加费名称"
        p = _price(f, f"comp_price_{i}", errors, "附加费单价", True)
        components.append({"code": code, "name": name, "price": p or "0"})
    if len({c["code"] for c in components}) != len(components):
        errors["components"] = "附加费代码重复"
    if components:
        version["components"] = components
    if errors:
        raise FormErrors(errors)
    return version


def form_from_version(v: Mapping | None, tz: ZoneInfo, effective_from: datetime | None = None) -> dict:
    """Form fields showing a version document (None: an empty flat plan). `editable` is
    False when the version has more than one daily schedule (by season or day type): the
    form shows one schedule, so such a version is edited as JSON."""
    v = v or {}
    f: dict = {"mode": "flat", "editable": True, "price": ""}
    eff = effective_from or (datetime.fromisoformat(str(v["effective_from"]).replace("Z", "+00:00"))
                             if v.get("effective_from") else None)
    f["effective_from"] = local_input(eff, tz) if eff else ""
    prices = dict(v.get("prices") or {})
    for p in FORM_PERIODS:
        f[f"price_{p}"] = prices.get(p, "")
    schedules = v.get("schedules") or []
    if len(schedules) > 1:
        f["editable"] = False
    rows = list(schedules[0].get("intervals") or []) if schedules else []
    if len(rows) > INTERVAL_ROWS:
        f["editable"] = False
    if schedules:
        f["mode"] = "tou"
    elif prices:  # one price all day (named flat, or another period)
        f["price"] = next(iter(prices.values()))
    if not rows:
        rows = [{"start": a, "end": b, "period": p} for a, b, p in DEFAULT_TOU]
    for i in range(INTERVAL_ROWS):
        iv = rows[i] if i < len(rows) else {}
        f[f"iv_start_{i}"], f[f"iv_end_{i}"], f[f"iv_period_{i}"] = (iv.get("start", ""), iv.get("end", ""),
                                                                    iv.get("period", ""))
    tiers = v.get("tiers") or {}
    f["tier_cycle"] = tiers.get("cycle", "")
    bands = tiers.get("bands") or []
    if len(bands) > BAND_ROWS:
        f["editable"] = False
    for i in range(BAND_ROWS):
        b = bands[i] if i < len(bands) else {}
        f[f"band_up_to_{i}"] = b.get("up_to") or ""
        f[f"band_surcharge_{i}"] = b.get("surcharge", "")
    comps = v.get("components") or []
    if len(comps) > COMPONENT_ROWS:
        f["editable"] = False
    for i in range(COMPONENT_ROWS):
        c = comps[i] if i < len(comps) else {}
        f[f"comp_code_{i}"], f[f"comp_name_{i}"], f[f"comp_price_{i}"] = (c.get("code", ""), c.get("name", ""),
                                                                          c.get("price", ""))
    return f


def _quantity(f: Mapping[str, object], name: str, errors: dict, label: str) -> Decimal | None:
    raw = str(f.get(name) or "").strip()
    if not raw:
        return None
    try:
        q = Decimal(raw)
    except InvalidOperation:
        errors[name] = f"{label}不是有效的数字"
        return None
    if not q.is_finite():
        errors[name] = f"{label}不是有效的数字"
    elif q < 0:
        errors[name] = f"{label}不能为负数"
    elif q != q.quantize(Decimal("0.01")) or q >= Decimal("100000000"):
        errors[name] = f"{label}最多 2 位小数、小于 1 亿"
    else:
        return q
    return None


def preview_request(f: Mapping[str, object], tz: ZoneInfo) -> dict:
    """The 电价试算 form (or API body): start_at / end_at (datetime-local in the plan's time
    zone, or ISO with an offset), and either mode "totals" (start_total, end_total: the
    meter's readings) or mode "periods" (kwh_<period>: usage per TOU register); rated_kw
    (the meter's rated power for the jump rule, default 10). Raises FormErrors."""
    errors: dict[str, str] = {}
    start = parse_local_time(str(f.get("start_at") or ""), tz)
    end = parse_local_time(str(f.get("end_at") or ""), tz)
    if start is None:
        errors["start_at"] = "请填写有效的开始时间"
    if end is None:
        errors["end_at"] = "请填写有效的结束时间"
    if start is not None and end is not None and end <= start:
        errors["end_at"] = "结束时间必须晚于开始时间"
    out: dict = {"start": start, "end": end, "start_total": None, "end_total": None, "by_period": None}
    mode = f.get("mode") or "totals"
    if mode == "totals":
        a = _quantity(f, "start_total", errors, "开始读数")
        b = _quantity(f, "end_total", errors, "结束读数")
        if a is None and "start_total" not in errors:
            errors["start_total"] = "请填写开始读数"
        if b is None and "end_total" not in errors:
            errors["end_total"] = "请填写结束读数"
        if a is not None and b is not None:
            if b < a:
                errors["end_total"] = "结束读数不能小于开始读数"
            out["start_total"], out["end_total"] = str(a), str(b)
    elif mode == "periods":
        by_period = {}
        for p in FORM_PERIODS:
            q = _quantity(f, f"kwh_{p}", errors, f"{PERIOD_NAMES[p]}时段用量")
            if q is not None and q > 0:
                by_period[p] = str(q)
        if not by_period and not any(k.startswith("kwh_") for k in errors):
            errors["kwh"] = "请至少填写一个时段的用量"
        out["by_period"] = by_period
    else:
        errors["mode"] = "请选择试算方式"
    kw_raw = str(f.get("rated_kw") or "10").strip()
    try:
        kw = Decimal(kw_raw)
    except InvalidOperation:
        kw = Decimal(0)
    if not kw.is_finite() or kw <= 0 or kw > 10000:
        errors["rated_kw"] = "额定功率必须是 0 到 10000 之间的正数"
    out["rated_kw"] = kw_raw
    if errors:
        raise FormErrors(errors)
    return out


def check_revision(old: Plan | None, new: Plan, now: datetime, lead: timedelta) -> None:
    """A stored plan (old) replaced by new: versions in force by now + lead stay exactly as
    they were, and every version added or changed starts after now + lead."""
    if old is None:
        return
    if new.utility != old.utility:
        raise ValidationError("已有方案的用途（电 / 水）不能修改", code="tariff_revision", field="utility")
    if new.timezone != old.timezone:
        raise ValidationError("已有方案的时区不能修改", code="tariff_revision", field="timezone")
    cutoff = now.astimezone(UTC) + lead
    tz = old.tz
    minutes = int(lead.total_seconds() // 60)
    for v in old.versions:
        if v.effective_from <= cutoff and v not in new.versions:
            when = v.effective_from.astimezone(tz).strftime("%Y-%m-%d %H:%M")
            raise ValidationError(f"{when} 起的版本已生效，不能修改或删除（已计费的账单按它计算）；请新增一个版本",
                                  code="tariff_version_in_force", field="versions")
    for v in new.versions:
        if v not in old.versions and v.effective_from <= cutoff:
            raise ValidationError(f"新版本的生效时间必须晚于当前时间至少 {minutes} 分钟（不能追溯修改已计费的账单）",
                                  code="tariff_effective_past", field="effective_from")


def version_state(effective_from: datetime, following: datetime | None, now: datetime) -> str:
    """current (in force now) | past (superseded) | future."""
    if effective_from > now:
        return "future"
    if following is not None and following <= now:
        return "past"
    return "current"


__all__ = ["FORM_PERIODS", "PERIODS", "FormErrors", "check_revision", "form_from_version", "local_input",
           "parse_local_time", "preview_request", "version_from_form", "version_state"]
