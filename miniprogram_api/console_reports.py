"""Reports (报表) in the console (docs/console.md "Reports", docs/reports.md "Pages and
export"): pages under /p/<property_id>/reports, every admin role of the property may read.

- /reports (= /reports/monthly) ?month=YYYY-MM&building=: the monthly comprehensive report per
  room and tenant (kWh with the time-of-use split, m³, cost, payments, opening and closing
  balance), building subtotals and the property's total;
- /reports/energy ?granularity=day|month|year&start=&end=&building=&month=: energy by period
  (chart and table), with the month's month-on-month and year-on-year comparison;
- /reports/top ?month=&utility=electricity|water&n=: the top consumers;
- /reports/arrears: accounts in arrears (negative balance or unpaid bills);
- /reports/loss ?month=: shared-area loss (master vs sub-meters) per apportionment group;
- /reports/income ?granularity=&start=&end=: income by period and its composition.

Each takes `format=xlsx | csv | print` for the Excel file, the CSV (UTF-8 with BOM) or the
printable view (no nav). Bad input: the page with the Chinese message, 400 (an export: the
400 error). The figures come from core.services.reports (the rollups, never the ledger);
the tables and files from core.domain.report_export.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, redirect, render_template, request, url_for

from core.domain.errors import ValidationError
from miniprogram_api.admin_auth import admin_required, console_gate

bp = Blueprint("console_reports", __name__)
bp.before_request(console_gate)

PAGE = "/p/<property_id>/reports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOP_MAX = 100


def _x():
    from core.domain import report_export

    return report_export


def _svc():
    from core.services import reports

    return reports


def _property(property_id: str):
    from core.services import tariffs

    return tariffs.property_of(property_id)


def _buildings(property_id: str) -> tuple[list, dict[str, str]]:
    """The property's buildings, and their names by building id."""
    from core.services import charge_items

    buildings = charge_items.buildings(property_id)
    return buildings, {b.building_id: b.name for b in buildings}


def _today():
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _this_month() -> str:
    t = _today()
    return f"{t.year:04d}-{t.month:02d}"


def _arg(name: str, default: str = "") -> str:
    return (request.args.get(name) or "").strip() or default


def _building_arg(property_id: str, buildings: list) -> str:
    building = _arg("building")
    if building and building not in {b.building_id for b in buildings}:
        raise ValidationError(f"楼栋「{building}」不存在", code="building_invalid", field="building")
    return building


def _granularity() -> str:
    g = _arg("granularity", "month")
    if g not in _x().GRANULARITIES:
        raise ValidationError("统计粒度必须是 日、月 或 年（day、month、year）", code="granularity_invalid",
                              field="granularity")
    return g


def _deliver(fmt: str, property_id: str, slug: str, tables: list, title: str, **page):
    """The export asked for: the workbook, the CSV (the first table) or the printable view."""
    x = _x()
    stamp = page.pop("stamp", "")
    filename = f"{slug}-{property_id}{'-' + stamp if stamp else ''}"
    if fmt == "xlsx":
        body, mime, ext = x.to_xlsx(tables, title), XLSX, "xlsx"
    elif fmt == "csv":
        body, mime, ext = x.to_csv(tables[0]).encode("utf-8"), "text/csv; charset=utf-8", "csv"
    else:
        return render_template("console/reports_print.html", tables=tables, title=title, X=x,
                               property=_property(property_id), printed_at=datetime.now(ZoneInfo("Asia/Shanghai")),
                               **page)
    response = Response(body)
    response.headers["Content-Type"] = mime
    response.headers["Content-Disposition"] = (f'attachment; filename="{quote(filename)}.{ext}"; '
                                               f"filename*=UTF-8''{quote(title)}.{ext}")
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(template: str, property_id: str, tab: str, error: str = "", **kw):
    """A report page; with an error (bad input) the page says why, with status 400."""
    return render_template(template, property_id=property_id, property=_property(property_id), nav_active="reports",
                           tab=tab, X=_x(), error=error, query=request.args.to_dict(), **kw), 400 if error else 200


def _fail(fmt: str, e: ValidationError):
    """Bad input: an export answers the 400 error itself; a page shows the message."""
    if fmt:
        raise e
    return e.message


def _format() -> str:
    return _x().export_format(request.args.get("format"))


# --- the monthly comprehensive report --------------------------------------------------------------


@bp.get(PAGE)
@admin_required("view")
def index(property_id: str):
    return redirect(url_for("console_reports.monthly", property_id=property_id, **request.args.to_dict()))


@bp.get(f"{PAGE}/monthly")
@admin_required("view")
def monthly(property_id: str):
    x = _x()
    fmt = _format()
    buildings, names = _buildings(property_id)
    month, building, error = _arg("month", _this_month()), _arg("building"), ""
    try:
        month = x.parse_period("month", month, "month")
        building = _building_arg(property_id, buildings)
        rows = _svc().monthly(property_id, month, building_id=building or None,
                              building_ids=[b.building_id for b in buildings])
    except ValidationError as e:
        error, rows = _fail(fmt, e), []
    report = x.monthly_report(month if not error else "", rows, names)
    if fmt:
        scope = f"{names.get(building, building)} " if building else ""
        return _deliver(fmt, property_id, "monthly", [report.summary, *report.buildings] if fmt == "xlsx"
                        else [report.detail], f"{scope}{month} 月度综合报表", stamp=month, subtitle=scope.strip())
    return _page("console/reports_monthly.html", property_id, "monthly", error, report=report, month=month,
                 building=building, buildings=buildings, rooms=len(rows))


# --- energy by period, month-on-month and year-on-year -----------------------------------------------


@bp.get(f"{PAGE}/energy")
@admin_required("view")
def energy(property_id: str):
    x = _x()
    fmt = _format()
    buildings, names = _buildings(property_id)
    granularity, building, error = "month", _arg("building"), ""
    start, end = x.default_range("month", _today())
    month = _arg("month", _this_month())
    totals, comparison = [], {}
    try:
        granularity = _granularity()
        start, end = x.default_range(granularity, _today())
        start, end = x.parse_range(granularity, _arg("start", start), _arg("end", end))
        building = _building_arg(property_id, buildings)
        month = x.parse_period("month", month, "month")
        totals = _svc().totals(property_id, granularity, start, end, building_id=building or None)
        comparison = _svc().comparison(property_id, month)
    except ValidationError as e:
        error = _fail(fmt, e)
    scope = names.get(building, building) if building else "全物业"
    table = x.totals_table(granularity, totals, f"{scope} {start} 至 {end} 能耗（按{x.GRANULARITIES[granularity]}）")
    compare = x.comparison_table(comparison, names) if comparison else None
    if fmt:
        tables = [table] + ([compare] if compare and fmt != "csv" else [])
        return _deliver(fmt, property_id, "energy", tables, table.title, stamp=f"{start}-{end}")
    chart = {"periods": [p.period for p in totals],
             "kwh": [float(p.quantity.get("electricity", 0)) for p in totals],
             "m3": [float(p.quantity.get("water", 0)) for p in totals],
             "electricity_cost": [p.cost.get("electricity", 0) / 100 for p in totals],
             "water_cost": [p.cost.get("water", 0) / 100 for p in totals]}
    return _page("console/reports_energy.html", property_id, "energy", error, table=table, compare=compare,
                 chart=chart, granularity=granularity, start=start, end=end, month=month, building=building,
                 buildings=buildings)


# --- top consumers ----------------------------------------------------------------------------------


@bp.get(f"{PAGE}/top")
@admin_required("view")
def top(property_id: str):
    x = _x()
    fmt = _format()
    month, utility, n_text, error = _arg("month", _this_month()), _arg("utility", "electricity"), _arg("n", "10"), ""
    rows: list = []
    n = 10
    try:
        month = x.parse_period("month", month, "month")
        if utility not in x.UNITS:
            raise ValidationError("能耗类型必须是 电（electricity）或 水（water）", code="utility_invalid", field="utility")
        if not n_text.isdigit() or not 1 <= int(n_text) <= TOP_MAX:
            raise ValidationError(f"排行数量必须是 1 到 {TOP_MAX} 的整数", code="n_invalid", field="n")
        n = int(n_text)
        rows = _svc().top_consumers(property_id, month, utility, n=n)
    except ValidationError as e:
        error = _fail(fmt, e)
        utility = utility if utility in x.UNITS else "electricity"
    _, names = _buildings(property_id)
    table = x.top_table(month, utility, rows, names)
    if fmt:
        return _deliver(fmt, property_id, f"top-{utility}", [table], table.title, stamp=month)
    chart = {"labels": [f"{names.get(r.building_id, r.building_id)} {r.room_name or r.room_id}" for r in rows],
             "values": [float(r.total_quantity(utility)) for r in rows], "unit": x.UNITS[utility]}
    return _page("console/reports_top.html", property_id, "top", error, table=table, chart=chart, month=month,
                 utility=utility, n=n)


# --- arrears ------------------------------------------------------------------------------------------


@bp.get(f"{PAGE}/arrears")
@admin_required("view")
def arrears(property_id: str):
    x = _x()
    fmt = _format()
    _, names = _buildings(property_id)
    table = x.arrears_table(_svc().arrears(property_id), names, _today().isoformat())
    if fmt:
        return _deliver(fmt, property_id, "arrears", [table], table.title, stamp=_today().isoformat())
    return _page("console/reports_arrears.html", property_id, "arrears", table=table)


# --- shared-area loss -----------------------------------------------------------------------------------


@bp.get(f"{PAGE}/loss")
@admin_required("view")
def loss(property_id: str):
    x = _x()
    fmt = _format()
    month, error, rows = _arg("month", _this_month()), "", []
    try:
        month = x.parse_period("month", month, "month")
        rows = _svc().shared_loss(property_id, month)
    except ValidationError as e:
        error = _fail(fmt, e)
    table = x.loss_table(month, rows)
    if fmt:
        return _deliver(fmt, property_id, "shared-loss", [table], table.title, stamp=month)
    return _page("console/reports_loss.html", property_id, "loss", error, table=table, month=month,
                 flagged=sum(1 for r in rows if r.get("flagged")))


# --- income ---------------------------------------------------------------------------------------------


@bp.get(f"{PAGE}/income")
@admin_required("view")
def income(property_id: str):
    x = _x()
    fmt = _format()
    granularity, error, rows = "month", "", []
    start, end = x.default_range("month", _today())
    try:
        granularity = _granularity()
        start, end = x.default_range(granularity, _today())
        start, end = x.parse_range(granularity, _arg("start", start), _arg("end", end))
        rows = _svc().income(property_id, granularity, start, end)
    except ValidationError as e:
        error = _fail(fmt, e)
    table, parts_total = x.income_table(granularity, start, end, rows)
    if fmt:
        return _deliver(fmt, property_id, "income", [table], table.title, stamp=f"{start}-{end}")
    chart = {"periods": [r.get("period") for r in rows],
             "series": [{"key": p, "name": x.INCOME_NAMES[p], "data": [(r.get(p) or 0) / 100 for r in rows]}
                        for p in x.INCOME_ORDER],
             "pie": [{"key": p, "name": x.INCOME_NAMES[p], "value": parts_total[p] / 100} for p in x.INCOME_ORDER
                     if parts_total[p]]}
    return _page("console/reports_income.html", property_id, "income", error, table=table, chart=chart,
                 granularity=granularity, start=start, end=end, parts_total=parts_total)
