"""Report tables and their exports (docs/reports.md "Pages and export"): rows of the report
services -> a Table (columns with a kind, rows with subtotal / total marks) -> the page's
cells, a CSV text (UTF-8 with BOM, so Excel opens the Chinese correctly) or an Excel
workbook (openpyxl: Chinese headers, yuan `#,##0.00`, kWh / m³ `0.00`, frozen header row).

Pure: no I/O. openpyxl is imported inside `to_xlsx` only (docs/cold-start.md).

Values in a Table are the raw figures: money in integer fen, quantities as Decimal, ratios
as Decimal fractions (0.125 = 12.50%), text as str; None is an empty cell.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from core.domain.errors import ValidationError
from core.domain.money import yuan
from core.domain.reports import INCOME_NAMES, INCOME_PARTS
from core.domain.tariff import PERIOD_NAMES, PERIODS

TEXT, YUAN, KWH, M3, INT, PCT = "text", "yuan", "kwh", "m3", "int", "pct"
NUMBER_FORMATS = {YUAN: "#,##0.00", KWH: "0.00", M3: "0.00", INT: "0", PCT: "0.00%"}
UNITS = {"electricity": "kWh", "water": "m³"}
UTILITY_NAMES = {"electricity": "电", "water": "水"}
QTY_KIND = {"electricity": KWH, "water": M3}
PAYMENT_CATEGORIES = ("recharge", "cash", "bill_payment")  # money that came in (收款)
FORMATS = ("xlsx", "csv", "print")
GRANULARITIES = {"day": "日", "month": "月", "year": "年"}
MAX_POINTS = {"day": 92, "month": 120, "year": 10}  # as core.services.reports  # the longest range one page shows
_TWO = Decimal("0.01")


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # Chinese, with the unit: "电费（元）"
    kind: str = TEXT


@dataclass(frozen=True)
class Row:
    cells: tuple
    mark: str = ""  # "" | "subtotal" (a building's 小计) | "total" (合计)


@dataclass
class Table:
    name: str  # sheet name: 31 characters at most, none of []:*?/\
    title: str
    columns: tuple[Column, ...]
    rows: list[Row] = field(default_factory=list)

    def add(self, cells: Sequence, mark: str = "") -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(Row(tuple(cells), mark))

    def column(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)


# --- input -------------------------------------------------------------------------------------------


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(granularity: str, text: str, field_name: str = "month") -> str:
    """A period in the granularity's format ("YYYY-MM-DD" | "YYYY-MM" | "YYYY"), checked."""
    text = (text or "").strip()
    example = {"day": "2026-04-01", "month": "2026-04", "year": "2026"}.get(granularity)
    if example is None:
        raise ValidationError("统计粒度必须是 日、月 或 年（day、month、year）", code="granularity_invalid",
                              field="granularity")
    pattern = {"day": _DAY, "month": _MONTH, "year": _YEAR}[granularity]
    m = pattern.match(text)
    ok = bool(m)
    if m:
        parts = [int(g) for g in m.groups()] + [1] * (3 - len(m.groups()))
        try:
            ok = 2000 <= parts[0] <= 2100 and bool(date(*parts))
        except ValueError:
            ok = False
    if not ok:
        what = {"day": "日期", "month": "月份", "year": "年份"}[granularity]
        raise ValidationError(f"{what}格式不正确：「{text}」，应为 {example} 这样的{what}",
                              code=f"{field_name}_invalid", field=field_name)
    return text


def _ordinal(granularity: str, period: str) -> int:
    if granularity == "year":
        return int(period)
    if granularity == "month":
        y, m = period.split("-")
        return int(y) * 12 + int(m) - 1
    return date.fromisoformat(period).toordinal()


def parse_range(granularity: str, start: str, end: str) -> tuple[str, str]:
    """start..end inclusive, checked: same format, start <= end, at most MAX_POINTS periods."""
    start = parse_period(granularity, start, "start")
    end = parse_period(granularity, end, "end")
    count = _ordinal(granularity, end) - _ordinal(granularity, start) + 1
    if count < 1:
        raise ValidationError("开始不能晚于结束", code="range_invalid", field="start")
    if count > MAX_POINTS[granularity]:
        raise ValidationError(f"按{GRANULARITIES[granularity]}统计时一次最多查看 {MAX_POINTS[granularity]} "
                              f"个{GRANULARITIES[granularity]}", code="range_too_long", field="end")
    return start, end


def default_range(granularity: str, today: date) -> tuple[str, str]:
    """The page's default range ending today: the last 30 days, 12 months or 5 years."""
    if granularity == "day":
        first = date.fromordinal(today.toordinal() - 29)
        return first.isoformat(), today.isoformat()
    if granularity == "month":
        n = today.year * 12 + today.month - 1 - 11
        return f"{n // 12:04d}-{n % 12 + 1:02d}", f"{today.year:04d}-{today.month:02d}"
    return f"{today.year - 4:04d}", f"{today.year:04d}"


def export_format(text: str | None) -> str:
    """"" (the page) or one of FORMATS."""
    text = (text or "").strip()
    if text and text not in FORMATS:
        raise ValidationError("导出格式必须是 xlsx、csv 或 print", code="format_invalid", field="format")
    return text


# --- cells -------------------------------------------------------------------------------------------


_ZERO = Decimal(0)


def _dec(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def cell_text(kind: str, value) -> str:
    """A cell as a person reads it on the page and in the CSV: yuan and quantities with two
    decimals, ratios as percentages; an empty cell is ""."""
    if value is None:
        return ""
    if kind == YUAN:
        return yuan(int(value))
    if kind in (KWH, M3):
        return str(_dec(value).quantize(_TWO, ROUND_HALF_UP))
    if kind == PCT:
        return f"{(_dec(value) * 100).quantize(_TWO, ROUND_HALF_UP)}%"
    return str(value)


def cell_value(kind: str, value):
    """A cell as Excel stores it: a number (yuan = fen / 100, exactly) for the numeric kinds."""
    if value is None:
        return None
    if kind == YUAN:
        return Decimal(int(value)) / 100
    if kind in (KWH, M3):
        return _dec(value).quantize(Decimal("0.001"), ROUND_HALF_UP).normalize() if _dec(value) else Decimal(0)
    if kind == PCT:
        return _dec(value)
    if kind == INT:
        return int(value)
    return str(value)


def header_parts(header: str) -> tuple[str, str]:
    """"电费（元）" -> ("电费", "（元）"): the page sets the unit on a line of its own."""
    name, sep, unit = header.partition("（")
    return (name, sep + unit) if sep else (header, "")


def cells(table: Table, row: Row) -> list[tuple[str, str]]:
    """(text, kind) per cell: what the page's table macro renders."""
    return [(cell_text(c.kind, v), c.kind) for c, v in zip(table.columns, row.cells, strict=True)]


# --- exports -----------------------------------------------------------------------------------------


def to_csv(table: Table) -> str:
    """The table as CSV text starting with a BOM (encode it as UTF-8)."""
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c.header for c in table.columns])
    for row in table.rows:
        w.writerow([cell_text(c.kind, v) for c, v in zip(table.columns, row.cells, strict=True)])
    return out.getvalue()


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def sheet_name(text: str, taken: Iterable[str] = ()) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = _SHEET_BAD.sub("_", text).strip("'") or "Sheet"
    base = base[:31]
    taken = {t.lower() for t in taken}
    name, n = base, 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[:31 - len(suffix)] + suffix, n + 1
    return name


def _width(text: str) -> float:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def to_xlsx(tables: Sequence[Table], title: str = "") -> bytes:
    """One sheet per table: the header row bold and frozen, an autofilter over it, each
    column's number format by kind, subtotal and total rows bold; returns the .xlsx bytes."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    if title:
        wb.properties.title = title
    wb.properties.creator = "费控"
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="E8EEF7")
    total_fill = PatternFill("solid", fgColor="F3F4F6")
    names: list[str] = []
    for table in tables:
        name = sheet_name(table.name, names)
        names.append(name)
        ws = wb.create_sheet(name)
        ws.append([c.header for c in table.columns])
        for cell in ws[1]:
            cell.font, cell.fill = bold, head_fill
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in table.rows:
            ws.append([cell_value(c.kind, v) for c, v in zip(table.columns, row.cells, strict=True)])
            if row.mark:
                for cell in ws[ws.max_row]:
                    cell.font, cell.fill = bold, total_fill
        for i, col in enumerate(table.columns, start=1):
            letter = get_column_letter(i)
            fmt = NUMBER_FORMATS.get(col.kind)
            if fmt:
                for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                    cell.number_format = fmt
            texts = [col.header] + [cell_text(col.kind, r.cells[i - 1]) for r in table.rows]
            ws.column_dimensions[letter].width = min(40, max(8, max(_width(t) for t in texts) + 2))
        ws.freeze_panes = "A2"
        if table.rows:
            ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{ws.max_row}"
    if not tables:
        wb.create_sheet("Sheet")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the monthly comprehensive report (月度综合报表) -------------------------------------------------


def _bands_used(rows: Sequence, utility: str) -> list[str]:
    seen = {b for r in rows for b, q in (r.quantity.get(utility) or {}).items() if q}
    return [b for b in PERIODS if b in seen] + sorted(b for b in seen if b not in PERIODS)


def monthly_columns(bands: Sequence[str]) -> tuple[Column, ...]:
    return (Column("building", "楼栋"), Column("room", "房间"), Column("tenant", "租户"),
            Column("kwh", "电量（kWh）", KWH),
            *(Column(f"kwh:{b}", f"{PERIOD_NAMES.get(b, b)}（kWh）", KWH) for b in bands),
            Column("electricity_cost", "电费（元）", YUAN), Column("m3", "水量（m³）", M3),
            Column("water_cost", "水费（元）", YUAN), Column("payments", "收款（元）", YUAN),
            Column("refund", "退款（元）", YUAN), Column("fees", "其他费用（元）", YUAN),
            Column("adjust", "调账（元）", YUAN), Column("opening", "期初余额（元）", YUAN),
            Column("closing", "期末余额（元）", YUAN))


_OTHER_FEES = frozenset(("shared", "late_fee", "settlement"))
_NOTHING: Mapping = {}


def _fees(money: Mapping[str, int]) -> int:
    return sum(v for k, v in money.items() if k in _OTHER_FEES or k.startswith("fee:"))


def _total(values, start):
    for v in values:
        start += v if isinstance(v, (Decimal, int)) else _dec(v)
    return start


def monthly_figures(r, bands: Sequence[str]) -> list:
    """One room's numbers in monthly_columns order (without the three text columns).
    (Plain loops: a report of 10,000 rooms calls this 10,000 times.)"""
    q = r.quantity.get("electricity") or _NOTHING
    water = r.quantity.get("water") or _NOTHING
    money = r.money or _NOTHING
    get = money.get
    return [_total(q.values(), _ZERO), *(_dec(q.get(b, 0)) for b in bands),
            sum((r.cost.get("electricity") or _NOTHING).values()),
            _total(water.values(), _ZERO),
            sum((r.cost.get("water") or _NOTHING).values()),
            sum(get(k, 0) for k in PAYMENT_CATEGORIES), get("refund", 0), _fees(money),
            get("adjust_credit", 0) - get("adjust_debit", 0), r.opening, r.closing]


def _sum(figures: Sequence[list]) -> list:
    if not figures:
        return []
    out = []
    for column in zip(*figures, strict=True):
        present = [v for v in column if v is not None]
        out.append(sum(present[1:], present[0]) if present else None)
    return out


@dataclass
class MonthlyReport:
    month: str
    detail: Table  # every room, each building's 小计 after its rooms, the 合计 last (page, CSV, print)
    summary: Table  # one row per building and the 合计 (the workbook's first sheet)
    buildings: list[Table]  # one per building: its rooms and its 小计
    total: list  # the property's figures (monthly_columns order, without the text columns)

    def figure(self, key: str):
        """One of the property's totals by column key ("kwh", "electricity_cost", "closing"...)."""
        keys = [c.key for c in self.detail.columns[3:]]
        return self.total[keys.index(key)] if key in keys else None


def monthly_report(month: str, rows: Sequence, building_names: Mapping[str, str] | None = None) -> MonthlyReport:
    """The month's rows (RoomPeriod, sorted by building and room) as the report's tables.
    Subtotals and the total are sums of the rooms' figures (balances: of the rooms that
    have one)."""
    names = dict(building_names or {})
    bands = _bands_used(rows, "electricity")
    columns = monthly_columns(bands)
    title = f"{month} 月度综合报表"
    detail = Table("明细", title, columns)
    summary = Table("汇总", f"{title}（按楼栋汇总）", (Column("building", "楼栋"), Column("rooms", "房间数", INT),
                                                  *columns[3:]))
    sheets: list[Table] = []
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(r.building_id, []).append(r)
    subtotals = []
    for building_id in sorted(groups):
        bname = names.get(building_id) or building_id
        sheet = Table(bname, f"{title} · {bname}", columns)
        figures = []
        for r in groups[building_id]:
            f = monthly_figures(r, bands)
            figures.append(f)
            cells_ = [bname, r.room_name or r.room_id, r.tenant_name or ""] + f
            sheet.add(cells_)
            detail.add(cells_)
        sub = _sum(figures)
        subtotals.append(sub)
        sheet.add([bname, "小计", f"{len(figures)} 户"] + sub, "subtotal")
        detail.add([bname, "小计", f"{len(figures)} 户"] + sub, "subtotal")
        summary.add([bname, len(figures)] + sub)
        sheets.append(sheet)
    total = _sum(subtotals) if subtotals else [Decimal(0), *(Decimal(0) for _ in bands), 0, Decimal(0), 0, 0, 0, 0, 0,
                                                None, None]
    detail.add(["合计", "", f"{len(rows)} 户"] + total, "total")
    summary.add(["合计", len(rows)] + total, "total")
    return MonthlyReport(month, detail, summary, sheets, total)


# --- the other reports' tables -------------------------------------------------------------------------


def totals_table(granularity: str, totals: Sequence, title: str) -> Table:
    """Energy by day / month / year (PeriodTotals): quantity and cost per utility."""
    t = Table(f"按{GRANULARITIES[granularity]}能耗", title, (
        Column("period", "期间"), Column("kwh", "电量（kWh）", KWH), Column("electricity_cost", "电费（元）", YUAN),
        Column("m3", "水量（m³）", M3), Column("water_cost", "水费（元）", YUAN), Column("rooms", "房间数", INT)))
    sums = [Decimal(0), 0, Decimal(0), 0]
    for p in totals:
        f = [_dec(p.quantity.get("electricity", 0)), int(p.cost.get("electricity", 0)),
             _dec(p.quantity.get("water", 0)), int(p.cost.get("water", 0))]
        sums = [a + b for a, b in zip(sums, f, strict=True)]
        t.add([p.period, *f, p.rooms])
    t.add(["合计", *sums, None], "total")
    return t


def top_table(month: str, utility: str, rows: Sequence, building_names: Mapping[str, str] | None = None) -> Table:
    kind = QTY_KIND[utility]
    t = Table("用量排行", f"{month} {UTILITY_NAMES[utility]}用量排行", (
        Column("rank", "排名", INT), Column("building", "楼栋"), Column("room", "房间"), Column("tenant", "租户"),
        Column("qty", f"用量（{UNITS[utility]}）", kind), Column("cost", "费用（元）", YUAN)))
    for i, r in enumerate(rows, start=1):
        t.add([i, (building_names or {}).get(r.building_id) or r.building_id, r.room_name or r.room_id, r.tenant_name or "", r.total_quantity(utility),
               r.total_cost(utility)])
    return t


COMPARE_FIGURES = (("quantity", "本月"), ("previous_quantity", "上月"), ("mom_quantity", "环比"),
                   ("last_year_quantity", "去年同月"), ("yoy_quantity", "同比"))


def comparison_table(comparison: Mapping, building_names: Mapping[str, str] | None = None) -> Table:
    """core.services.reports.comparison(): the property, then each building: per utility this
    month's quantity, the month before, month-on-month, the same month last year, year-on-year
    (ratios as given: current / base − 1; None where the base is 0)."""
    cols = [Column("scope", "范围")]
    for u in UNITS:
        for key, label in COMPARE_FIGURES:
            kind = PCT if key.endswith(("mom_quantity", "yoy_quantity")) else QTY_KIND[u]
            unit = "" if kind == PCT else f"（{UNITS[u]}）"
            cols.append(Column(f"{u}:{key}", f"{UTILITY_NAMES[u]}·{label}{unit}", kind))
    t = Table("环比同比", f"{comparison.get('month', '')} 环比与同比", tuple(cols))
    names = dict(building_names or {})
    scopes = [("全物业", comparison.get("property"), "total")] + [
        (b.get("building_name") or names.get(b.get("building_id", "")) or b.get("building_id", ""), b, "")
        for b in comparison.get("buildings") or []]
    for label, entry, mark in scopes:
        if not entry:
            continue
        cells: list = [label]
        for u in UNITS:
            f = (entry.get("utilities") or {}).get(u) or {}
            cells += [f.get(key) if key.endswith(("mom_quantity", "yoy_quantity")) else _dec(f.get(key) or 0)
                      for key, _ in COMPARE_FIGURES]
        t.add(cells, mark)
    return t


def arrears_table(rows: Sequence[Mapping], building_names: Mapping[str, str], today: str) -> Table:
    """core.services.reports.arrears(); the 合计 sums the negative balances and every unpaid bill."""
    t = Table("欠费", f"{today} 欠费名单", (
        Column("building", "楼栋"), Column("room", "房间"), Column("tenant", "租户"),
        Column("balance", "余额（元）", YUAN), Column("unpaid", "未缴账单（元）", YUAN),
        Column("oldest_due", "最早截止日"), Column("days_overdue", "逾期天数", INT)))
    balance = unpaid = 0
    for r in rows:
        b, u = int(r.get("balance") or 0), int(r.get("unpaid_bills") or 0)
        balance, unpaid = balance + min(b, 0), unpaid + u
        t.add([building_names.get(r.get("building_id", "")) or r.get("building_id", ""),
               r.get("room_name") or r.get("room_id", ""), r.get("tenant_name") or "", b, u,
               r.get("oldest_due") or None, r.get("days_overdue") if r.get("oldest_due") else None])
    t.add(["合计", "", f"{len(rows)} 户", balance, unpaid, None, None], "total")
    return t


def loss_table(month: str, rows: Sequence[Mapping]) -> Table:
    """core.services.reports.shared_loss(): per apportionment group, from its run of the month
    (a group without a run shows 未试算)."""
    t = Table("公摊损耗", f"{month} 公摊损耗（总表与分表）", (
        Column("group", "公摊组"), Column("utility", "类型"), Column("master", "总表用量", KWH),
        Column("subs", "分表合计", KWH), Column("loss", "损耗量", KWH), Column("ratio", "损耗率", PCT),
        Column("threshold", "阈值", PCT), Column("flag", "状态")))

    def pct(value):
        return None if value is None else _dec(value) / 100

    for r in rows:
        utility = r.get("utility")
        ran = r.get("master_usage") is not None
        master, subs = r.get("master_usage"), r.get("sub_usage")
        loss = r.get("loss")
        if loss is None and ran and subs is not None:
            loss = _dec(master) - _dec(subs)
        t.add([r.get("name") or r.get("group_id", ""),
               f"{UTILITY_NAMES[utility]}（{UNITS[utility]}）" if utility in UNITS else "",
               master, subs, loss, pct(r.get("loss_ratio_pct")), pct(r.get("threshold_pct")),
               "未试算" if not ran else "超阈值" if r.get("flagged") else "正常"])
    return t


INCOME_ORDER = INCOME_PARTS


def income_table(granularity: str, start: str, end: str, rows: Sequence[Mapping]) -> tuple[Table, dict]:
    """Income per period with its composition, and the range's total per part."""
    t = Table("收入", f"{start} 至 {end} 收入（按{GRANULARITIES[granularity]}）", (
        Column("period", "期间"), *(Column(p, f"{INCOME_NAMES[p]}（元）", YUAN) for p in INCOME_ORDER),
        Column("total", "合计（元）", YUAN)))
    sums = dict.fromkeys(INCOME_ORDER, 0)
    for r in rows:
        parts = [int(r.get(p) or 0) for p in INCOME_ORDER]
        for p, v in zip(INCOME_ORDER, parts, strict=True):
            sums[p] += v
        t.add([r.get("period"), *parts, sum(parts)])
    t.add(["合计", *(sums[p] for p in INCOME_ORDER), sum(sums.values())], "total")
    return t, sums
