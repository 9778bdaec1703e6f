"""Usage aggregates through the real ingest path (signed readings on the emulated uplink
queue, the consumer Lambda handler, real rating, the emulated DynamoDB), checked against
independent sums: the ledger's entries grouped by the local day of their read time, and
the register deltas of the readings this test sent. Then the tenant API over HTTP
(login through the WeChat API emulator).

Plan of the hand-worked numbers (Asia/Shanghai local times; peak 1.00 yuan/kWh 08:00-24:00,
valley 0.50 yuan/kWh 00:00-08:00; water flat 1.00 yuan/m³):
  electricity  30 Nov 22:00  100.00  baseline
               30 Nov 23:30  103.00  3 kWh peak                      300 fen  -> 30 Nov
                1 Dec 00:30  105.00  2 kWh: 1 peak (100) + 1 valley (50) 150  -> 1 Dec (its read time)
                1 Dec 02:30  108.30  3.3 kWh valley                   165 fen -> 1 Dec
  water        30 Nov 22:00   10.00  baseline
                1 Dec 01:00   10.75  0.75 m³ flat                      75 fen -> 1 Dec
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests

from core.domain.events import Subject
from core.domain.rating import MeterReading
from core.domain.usage import LOCAL_TZ
from core.integrations.queues import uplink_url
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.usage import UsageReads, forecast
from core.store import directory as dstore
from core.store import events as estore
from functions import uplink_consumer
from infra.fakes.sitesim import SimMeter, drain_uplink
from testkit.builders import Clock, Metered

TOU_PLAN = {
    "plan_id": "tou", "name": "峰谷", "utility": "electricity",
    "versions": [{
        "effective_from": "2020-01-01T00:00:00+08:00",
        "prices": {"peak": "1.0000", "valley": "0.5000"},
        "schedules": [{"intervals": [{"start": "00:00", "end": "08:00", "period": "valley"},
                                     {"start": "08:00", "end": "24:00", "period": "peak"}]}],
    }],
}


def local(d: int, h: int, mi: int = 0) -> datetime:
    """A local time on 30 November (d=30) or 1 December (d=1) 2026, as UTC."""
    month = 11 if d == 30 else 12
    return datetime(2026, month, d, h, mi, tzinfo=LOCAL_TZ).astimezone(UTC)


ELECTRICITY = [(1, local(30, 22), "100.00"), (2, local(30, 23, 30), "103.00"), (3, local(1, 0, 30), "105.00"),
               (4, local(1, 2, 30), "108.30")]
WATER = [(1, local(30, 22), "10.00"), (2, local(1, 1), "10.75")]


@pytest.fixture
def clock(monkeypatch):
    c = Clock(local(1, 3))  # after the readings (a reading ahead of the clock is an anomaly)
    monkeypatch.setattr(uplink_consumer, "ingest", Ingest(clock=c))
    return c


def deliver() -> int:
    return drain_uplink(uplink_url(), uplink_consumer.handler)


def send(site, meter: str, rows) -> None:
    site.send_readings([MeterReading(meter, seq, at, Decimal(total)) for seq, at, total in rows], rows[-1][1])


def independent_days(acct: str) -> dict[str, int]:
    """Cost per local day from the ledger itself: metered entries by their read time's day."""
    out: dict[str, int] = {}
    entries, _ = LedgerService().entries(acct, limit=500, newest_first=False)
    for e in entries:
        if e.kind in ("energy", "water"):
            day = datetime.fromisoformat(e.occurred_at.replace("Z", "+00:00")).astimezone(LOCAL_TZ).date()
            out[day.isoformat()] = out.get(day.isoformat(), 0) - e.amount
    return out


def deltas_by_day(rows) -> dict[str, Decimal]:
    """Register deltas per local day of the later reading, from the readings sent."""
    out: dict[str, Decimal] = {}
    for (_, _, a), (_, at, b) in zip(rows, rows[1:], strict=False):
        day = at.astimezone(LOCAL_TZ).date().isoformat()
        out[day] = out.get(day, Decimal(0)) + Decimal(b) - Decimal(a)
    return out


def point_map(report) -> dict[str, tuple]:
    return {p.period: (p.electricity_kwh, p.water_m3, p.cost_fen, p.band_list()) for p in report.points}


@pytest.fixture
def estate(clock):
    w = Metered(plan=TOU_PLAN)
    acct = w.account(opening=100000)
    elec, water = w.meter(acct), w.meter(acct, kind="water")
    site = w.sim()
    site.add(SimMeter(elec))
    site.add(SimMeter(water))
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    return w, acct, elec, water, site, openid


def test_aggregates_equal_the_ledger_and_the_readings_across_local_midnight(clock, estate):
    w, acct, elec, water, site, openid = estate
    send(site, elec, ELECTRICITY)
    send(site, water, WATER)
    assert deliver() >= 2
    reads = UsageReads(clock)
    days = reads.account_usage(openid, acct, "day", "2026-11-29", "2026-12-02")
    by_day = point_map(days)
    # hand-worked (module docstring)
    assert by_day == {
        "2026-11-29": (0, 0, 0, []),
        "2026-11-30": (Decimal(3), 0, 300, [("electricity", "peak", Decimal(3), 300)]),
        "2026-12-01": (Decimal("5.3"), Decimal("0.75"), 390, [
            ("electricity", "peak", Decimal(1), 100), ("electricity", "valley", Decimal("4.3"), 215),
            ("water", "flat", Decimal("0.75"), 75)]),
        "2026-12-02": (0, 0, 0, []),
    }
    # independent: the ledger's entries by the local day of their read time, the readings' deltas
    assert {p.period: p.cost_fen for p in days.points if p.cost_fen} == independent_days(acct)
    assert {p.period: p.electricity_kwh for p in days.points if p.electricity_kwh} == deltas_by_day(ELECTRICITY)
    assert {p.period: p.water_m3 for p in days.points if p.water_m3} == deltas_by_day(WATER)
    assert (days.totals.electricity_kwh, days.totals.water_m3, days.totals.cost_fen) == (
        Decimal("8.3"), Decimal("0.75"), 690)
    # months roll over at local midnight: the 00:30 reading is December's
    months = point_map(reads.account_usage(openid, acct, "month", "2026-11-01", "2026-12-31"))
    assert {k: v[:3] for k, v in months.items()} == {"2026-11": (Decimal(3), 0, 300),
                                                     "2026-12": (Decimal("5.3"), Decimal("0.75"), 390)}
    year = reads.account_usage(openid, acct, "year", "2026-01-01", "2026-12-31")
    assert [(p.period, p.cost_fen) for p in year.points] == [("2026", 690)]
    # one meter's view: its own cells only
    water_days = point_map(reads.meter_usage(openid, water, "day", "2026-11-30", "2026-12-01"))
    assert water_days == {"2026-11-30": (0, 0, 0, []),
                          "2026-12-01": (0, Decimal("0.75"), 75, [("water", "flat", Decimal("0.75"), 75)])}
    # the account item keeps its recent daily costs: the forecast needs no other read
    account = dstore.get_account(acct)
    assert dict(account.daily_costs) == {"2026-11-30": 300, "2026-12-01": 390}
    clock.advance(days=1)  # 2 December: both days complete; (300 + 390) / 2 = 345 a day
    assert forecast(account, clock=clock) == {"days": (100000 - 690) // 345, "daily_cost_fen": 345,
                                              "text": f"余额约可用 {(100000 - 690) // 345} 天"}


def test_a_redelivered_reading_adds_nothing(clock, estate):
    w, acct, elec, water, site, openid = estate
    send(site, elec, ELECTRICITY[:3])
    deliver()
    stale = Ingest(clock=clock)  # another consumer instance remembers the meter at seq 3
    assert stale.reading(w.site.site_id, MeterReading(elec, 3, ELECTRICITY[2][1], Decimal("105.00"))) == "duplicate"
    # seq 4 applied by the queue's consumer; the stale instance then gets the same reading
    send(site, elec, ELECTRICITY[3:])
    deliver()
    # its transaction (entry put if absent + usage ADDs) is refused as a whole
    assert stale.reading(w.site.site_id, MeterReading(elec, 4, ELECTRICITY[3][1], Decimal("108.30"))) == "duplicate"
    # and the whole batch redelivered by SQS
    send(site, elec, ELECTRICITY)
    deliver()
    days = point_map(UsageReads(clock).account_usage(openid, acct, "day", "2026-11-30", "2026-12-01"))
    assert {k: v[:3] for k, v in days.items()} == {"2026-11-30": (Decimal(3), 0, 300),
                                                   "2026-12-01": (Decimal("5.3"), 0, 315)}
    assert independent_days(acct) == {"2026-11-30": 300, "2026-12-01": 315}
    assert dict(dstore.get_account(acct).daily_costs) == {"2026-11-30": 300, "2026-12-01": 315}


def test_under_a_fen_a_reading_adds_its_quantity_once(clock, estate):
    w, acct, elec, water, site, openid = estate
    send(site, water, [(1, local(30, 22), "10.000")])
    deliver()
    # 0.004 m³ of water at 1 yuan: 0.4 fen, carried; nothing is posted. Applied by another
    # consumer instance, which now remembers the meter at seq 2.
    stale = Ingest(clock=clock)
    assert stale.reading(w.site.site_id, MeterReading(water, 2, local(30, 22, 15), Decimal("10.004"))) == "billed"
    send(site, water, [(3, local(30, 22, 30), "10.008")])  # another 0.4: 0.8 fen, still carried
    deliver()
    # the same reading at the stale instance: its meter update (baseline seq 2) is refused
    # with the whole transaction, usage ADDs included
    assert stale.reading(w.site.site_id, MeterReading(water, 3, local(30, 22, 30), Decimal("10.008"))) == "duplicate"
    day = point_map(UsageReads(clock).account_usage(openid, acct, "day", "2026-11-30", "2026-11-30"))["2026-11-30"]
    assert day == (0, Decimal("0.008"), 0, [("water", "flat", Decimal("0.008"), 0)])
    assert independent_days(acct) == {}


def test_a_zero_quantity_then_more_usage_both_add():
    """A rated reading of no usage ADDs a zero quantity with the rating's 9 decimals; the
    next reading's ADD to the same items must still work (the emulator stored that zero as
    0E-9 and then failed every later ADD, leaving the uplink message unrated)."""
    from datetime import date

    from core.domain.usage import BandUsage, Usage
    from core.store.tx import Tx
    from core.store.usage import add_usage, days

    acct = f"a-{uuid.uuid4().hex[:10]}"
    for quantity, fen in ((Decimal("0.000000000"), 0), (Decimal("1.500000000"), 150), (Decimal("0E-9"), 0)):
        tx = Tx()
        add_usage(tx, Usage(acct, "m-zero", "electricity", date(2026, 11, 30), (BandUsage("flat", quantity, fen),)),
                  tag="test")
        assert not tx.commit()
    [row] = days(acct, date(2026, 11, 30), date(2026, 11, 30))
    assert [(c.quantity, c.fen) for c in row.cells] == [(Decimal("1.5"), 150)]


def test_two_meters_of_one_account_at_once_both_count(clock):
    w = Metered(plan=TOU_PLAN)
    acct = w.account(opening=100000)
    meters = [w.meter(acct), w.meter(acct)]
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    site_id = w.site.site_id
    consumers = [Ingest(clock=clock), Ingest(clock=clock)]  # two Lambda instances
    for c, m in zip(consumers, meters, strict=True):
        assert c.reading(site_id, MeterReading(m, 1, local(30, 22), Decimal("100.00"))) == "baseline"
    for round_ in range(1, 6):  # five rounds of simultaneous readings, 1 kWh peak each
        barrier = threading.Barrier(2)
        results: list[str] = []

        def run(c, m, seq=round_ + 1, barrier=barrier, results=results):
            barrier.wait()
            results.append(c.reading(site_id, MeterReading(m, seq, local(30, 22, seq * 5), Decimal(100 + seq - 1))))

        threads = [threading.Thread(target=run, args=(c, m)) for c, m in zip(consumers, meters, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["billed", "billed"]
    day = UsageReads(clock).account_usage(openid, acct, "day", "2026-11-30", "2026-11-30").points[0]
    assert (day.electricity_kwh, day.cost_fen) == (Decimal(10), 1000)
    assert independent_days(acct) == {"2026-11-30": 1000}
    assert dict(dstore.get_account(acct).daily_costs) == {"2026-11-30": 1000}
    for m in meters:
        p = UsageReads(clock).meter_usage(openid, m, "day", "2026-11-30", "2026-11-30").points[0]
        assert (p.electricity_kwh, p.cost_fen) == (Decimal(5), 500)


def test_an_approved_gap_adds_its_usage_on_its_read_day(clock, estate):
    w, acct, elec, water, site, openid = estate
    send(site, elec, [(1, local(30, 12), "100.00")])
    deliver()
    clock.now = local(1, 3)
    # 30 Nov 12:00 -> 1 Dec 02:00 (14 h > the 6 h offline limit): a gap, nothing billed yet
    send(site, elec, [(2, local(1, 2), "110.00")])
    deliver()
    assert independent_days(acct) == {}
    assert UsageReads(clock).account_usage(openid, acct, "day", "2026-11-30", "2026-12-01").totals.cost_fen == 0
    gap = next(e for e in estore.events_of(Subject.meter(elec)) if e.type == "anomaly")
    entry = uplink_consumer.ingest.approve_anomaly(w.property_id, elec, gap.event_id, "admin")
    assert entry is not None
    days = UsageReads(clock).account_usage(openid, acct, "day", "2026-11-30", "2026-12-01")
    # the whole interval counts on its read day (1 Dec), as its entry's read time does
    assert [(p.period, p.electricity_kwh, p.cost_fen) for p in days.points] == [
        ("2026-11-30", 0, 0), ("2026-12-01", Decimal(10), -entry.amount)]
    assert independent_days(acct) == {"2026-12-01": -entry.amount}
    # 12:00-24:00 peak (12 h) and 00:00-02:00 valley (2 h): 10 kWh x 12/14 at 1.00 + 10 x 2/14 at 0.50
    # 8.571428571 kWh peak + 1.428571429 valley = 8.571428571 + 0.7142857145 = 9.2857142855 yuan -> 928 fen
    assert -entry.amount == 928
    assert dict(dstore.get_account(acct).daily_costs) == {"2026-12-01": 928}


def test_reads_cost_a_query_besides_the_access_check(clock, estate):
    from infra.local.stack import dynamodb_request_counts

    w, acct, elec, water, site, openid = estate
    send(site, elec, ELECTRICITY)
    deliver()
    reads = UsageReads(clock)

    def requests_of(call) -> int:
        before = sum(dynamodb_request_counts().values())
        call()
        return sum(dynamodb_request_counts().values()) - before

    # the membership GetItem + one Query (a month of days; a year of months)
    assert requests_of(lambda: reads.account_usage(openid, acct, "day", "2026-11-01", "2026-11-30")) == 2
    assert requests_of(lambda: reads.account_usage(openid, acct, "month", "2025-12-01", "2026-11-30")) == 2
    # the meter's GetItem + the membership GetItem + one Query
    assert requests_of(lambda: reads.meter_usage(openid, elec, "day", "2026-11-01", "2026-11-30")) == 3
    # membership + meters of the account (Query + BatchGet) + today's item
    assert requests_of(lambda: reads.realtime(openid, acct)) == 4


# --- the API over HTTP ------------------------------------------------------------------------


class TenantApi:
    def __init__(self, monkeypatch, clock) -> None:
        from core.services.auth import TenantAuth
        from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
        from infra.fakes.wechatpay_emulator import BackgroundServer
        from infra.local.stack import forget, seed_secrets
        from miniprogram_api.app import create_app

        appid, secret = "wx0000000000usage01", "app-secret-for-usage-tests"
        self.wechat = WeChatApiEmulator(WeChatApiConfig(appid=appid, secret=secret)).start()
        monkeypatch.setenv("FEIKONG_WECHAT_API_BASE", self.wechat.url)
        forget()
        seed_secrets({"wechat": {"appid": appid, "secret": secret}, "jwt": "jwt-secret-for-usage-tests-0123456789abc"})
        app = create_app()
        app.extensions["feikong.usage"] = UsageReads(clock)
        app.extensions["feikong.auth"] = TenantAuth(clock=Clock(datetime.now(UTC).replace(microsecond=0)))
        self.web = BackgroundServer(app).start()
        self._forget = forget

    def stop(self) -> None:
        self.web.stop()
        self.wechat.stop()
        self._forget()

    def token(self, openid: str) -> str:
        r = requests.post(f"{self.web.url}/api/v1/login", json={"code": self.wechat.issue_code(openid)}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def get(self, token: str, path: str, **params) -> requests.Response:
        return requests.get(f"{self.web.url}/api/v1{path}", params=params,
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.fixture
def api(monkeypatch, clock):
    a = TenantApi(monkeypatch, clock)
    yield a
    a.stop()


def test_the_usage_api(api, clock, estate):
    w, acct, elec, water, site, openid = estate
    send(site, elec, ELECTRICITY)
    send(site, water, WATER)
    deliver()
    token = api.token(openid)
    r = api.get(token, f"/accounts/{acct}/usage", granularity="day", start="2026-11-30", end="2026-12-01")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["granularity"] == "day" and [p["period"] for p in body["points"]] == ["2026-11-30", "2026-12-01"]
    dec1 = body["points"][1]
    assert {k: dec1[k] for k in ("electricity_kwh", "water_m3", "cost_fen", "cost")} == {
        "electricity_kwh": "5.3", "water_m3": "0.75", "cost_fen": 390, "cost": "3.90"}
    assert [(b["kind"], b["band"], b["band_text"], b["quantity"], b["cost_fen"]) for b in dec1["bands"]] == [
        ("electricity", "peak", "峰", "1", 100), ("electricity", "valley", "谷", "4.3", 215),
        ("water", "flat", "平", "0.75", 75)]
    assert body["totals"]["cost_fen"] == 690 and body["totals"]["electricity_kwh"] == "8.3"
    r = api.get(token, f"/meters/{water}/usage", granularity="month", start="2026-11-01", end="2026-12-31")
    assert r.status_code == 200, r.text
    assert [(p["period"], p["water_m3"], p["cost_fen"]) for p in r.json()["points"]] == [
        ("2026-11", "0", 0), ("2026-12", "0.75", 75)]
    assert r.json()["kind"] == "water"
    # realtime: 1 Dec 03:00 local; the electricity meter's last interval 00:30-02:30, 3.3 kWh: 1.65 kW
    r = api.get(token, f"/accounts/{acct}/realtime")
    assert r.status_code == 200, r.text
    rt = r.json()
    assert rt["today"] == {"date": "2026-12-01", "electricity_kwh": "5.3", "water_m3": "0.75", "cost_fen": 390,
                           "cost": "3.90"}
    meters = {m["meter_id"]: m for m in rt["meters"]}
    assert meters[elec] == {"meter_id": elec, "kind": "electricity", "power_kw": "1.65",
                            "read_at": ELECTRICITY[3][1].isoformat()}
    assert meters[water]["power_kw"] is None and meters[water]["kind"] == "water"


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"granularity": "week"}, "granularity_invalid", "统计粒度只能是 day、month 或 year"),
    ({"start": "2026/11/01"}, "date_invalid", "日期格式应为 YYYY-MM-DD"),
    ({"start": "2026-02-30"}, "date_invalid", "日期格式应为 YYYY-MM-DD"),
    ({"start": "2026-12-01", "end": "2026-11-01"}, "usage_range_invalid", "开始日期不能晚于结束日期"),
    ({"start": "2026-01-01", "end": "2026-12-31"}, "usage_range_invalid", "按日统计一次最多查询 92 天"),
    ({"granularity": "month", "start": "2020-01-01", "end": "2026-12-31"}, "usage_range_invalid", "36 个月"),
])
def test_bad_usage_queries_are_400_in_chinese(api, estate, params, code, message):
    w, acct, elec, water, site, openid = estate
    token = api.token(openid)
    for path in (f"/accounts/{acct}/usage", f"/meters/{elec}/usage"):
        r = api.get(token, path, **params)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == code and message in r.json()["error"]["message"]


def test_another_tenants_account_and_meter_are_404(api, estate):
    w, acct, elec, water, site, openid = estate
    other = Metered()
    their = other.account(opening=100)
    their_meter = other.meter(their)
    token = api.token(openid)
    for path in (f"/accounts/{their}/usage", f"/meters/{their_meter}/usage", f"/accounts/{their}/realtime"):
        r = api.get(token, path)
        assert r.status_code == 404 and "不存在" in r.json()["error"]["message"], r.text
    assert api.get("not-a-token", f"/accounts/{acct}/usage").status_code == 401

