"""The audit log page (审计日志, docs/console.md "Audit log"): a property's action log (or
its company's: logins and account changes) filtered and paged, and its export to Excel
(openpyxl: Chinese headers, frozen header row, date and yuan number formats) and CSV
(UTF-8 with a BOM, which Excel needs to read Chinese)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from core.domain import action_export as rules
from core.domain.action_log import ActionRecord, company_partition
from core.domain.admins import AdminPrincipal
from core.domain.directory import Property
from core.domain.errors import NotFound, ValidationError
from core.domain.naming import require_id
from core.services import action_log
from core.store import directory as dstore

PAGE = 50
MAX_EXPORT = 10_000
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
YUAN_FORMAT = "#,##0.00"
COLUMN_WIDTHS = (20, 12, 24, 8, 16, 20, 24, 12, 40, 40, 16)


@dataclass(frozen=True)
class AuditPage:
    records: list[ActionRecord]
    next_cursor: str | None


def property_of(property_id: str) -> Property:
    p = dstore.get_property(require_id(property_id, "property_id"))
    if p is None:
        raise NotFound("物业不存在", code="property_not_found", property_id=property_id)
    return p


def _partition(who: AdminPrincipal, property_id: str, f: rules.AuditFilter) -> str:
    if f.scope == "company":
        return company_partition(who.company_id)
    return property_id


def page(who: AdminPrincipal, property_id: str, f: rules.AuditFilter, cursor: str | None = None,
         limit: int = PAGE) -> AuditPage:
    """One page, newest first. The caller has checked the property is granted (and, for
    the company scope, the "admin" permission)."""
    records, nxt = action_log.query(_partition(who, property_id, f), f.since, f.until, actor=f.actor or None,
                                    action=f.action or None, cursor=cursor or None, limit=limit,
                                    target=f.target or None)
    return AuditPage(records, nxt)


def all_records(who: AdminPrincipal, property_id: str, f: rules.AuditFilter) -> list[ActionRecord]:
    """Every record the filters select, for an export (refused above MAX_EXPORT)."""
    out: list[ActionRecord] = []
    cursor = None
    while True:
        p = page(who, property_id, f, cursor, limit=action_log.MAX_PAGE)
        out.extend(p.records)
        if len(out) > MAX_EXPORT:
            raise ValidationError(f"导出超过 {MAX_EXPORT} 条，请缩小时间范围或增加筛选条件", code="export_too_large")
        if not p.next_cursor:
            return out
        cursor = p.next_cursor


def to_xlsx(records: list[ActionRecord], tz: ZoneInfo, title: str = "审计日志") -> bytes:
    from openpyxl import Workbook  # loaded by an export only
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    ws.append(list(rules.HEADERS))
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="E2E8F0")
    for cell in ws[1]:
        cell.font, cell.fill = bold, fill
    time_col, amount_col = rules.HEADERS.index("时间") + 1, rules.HEADERS.index("金额（元）") + 1
    for r in records:
        ws.append(list(rules.row(r, tz)))
        n = ws.max_row
        ws.cell(n, time_col).number_format = TIME_FORMAT
        ws.cell(n, amount_col).number_format = YUAN_FORMAT
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(rules.HEADERS))}{max(ws.max_row, 1)}"
    for i, width in enumerate(COLUMN_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_csv(records: list[ActionRecord], tz: ZoneInfo) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(rules.HEADERS)
    for r in records:
        cells = list(rules.row(r, tz))
        cells[0] = cells[0].strftime("%Y-%m-%d %H:%M:%S")
        amount = cells[rules.HEADERS.index("金额（元）")]
        cells[rules.HEADERS.index("金额（元）")] = "" if amount is None else f"{amount:.2f}"
        w.writerow(["" if c is None else c for c in cells])
    return buf.getvalue().encode("utf-8-sig")
