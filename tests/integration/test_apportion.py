"""Common-area apportionment (公摊) through the real paths: signed readings on the emulated
uplink queue rated by the consumer Lambda handler into the usage aggregates, the console's
JSON API and pages (Flask's test client, logged in through the login form, CSRF tokens as a
browser sends them), bills and the ledger on the emulated DynamoDB.

The estate, worked by hand (flat 1.00 yuan/kWh; Asia/Shanghai local times):
  master  (R001, the common area's account)  31 Oct 20:00 1000.00, 22:00 1100.00 -> 100 kWh in October;
                                              1 Nov 00:30 1110.00 -> 10 kWh in November (not October's)
  R002 sub-meter  10.00 -> 50.00  40 kWh     R003 sub-meter  5.00 -> 5.00  0 kWh
  R004 its account's meter (not listed: found through the account)  0.00 -> 20.00  20 kWh
  R005 vacant (no account), area 30
Group A (master - Σ sub, by usage, vacant rooms out): 100 - 60 = 40 kWh = 4000 fen; loss 40.00 %
  (> 5 %: flagged); usage 40 / 0 / 20: quotas 2666.67, 0, 1333.33 -> 2666 + 1333, the fen left
  to R002 (.67): R002 2667, R003 0, R004 1333.
Group B (master's usage, by area 20 / 30 / 50 / 30 m², vacant rooms in, deducted): 10000 fen;
  quotas 1538.46, 2307.69, 3846.15, 2307.69 -> 9998, two fen left to the equal largest
  remainders R003 and R005: 1538, 2308, 3846, 2308; R005 is vacant (the owner's, not posted):
  posted 7692.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.errors import NotFound
from core.domain.rating import MeterReading
from core.domain.usage import LOCAL_TZ
from core.integrations.queues import uplink_url
from core.services import action_log, bills
from core.services import apportion as service
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from functions import uplink_consumer
from infra.fakes.sitesim import SimMeter, drain_uplink
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Clock, Metered

PERIOD = "2026-10"


def local(month: int, day: int, h: int, mi: int = 0) -> datetime:
    return datetime(2026, month, day, h, mi, tzinfo=LOCAL_TZ).astimezone(UTC)


class Estate:
    """A Metered property: R001 the common area's account with the master meter, R002-R004
    rooms with an account and a meter each, R005 vacant; October's readings delivered."""

    def __init__(self, monkeypatch) -> None:
        self.clock = Clock(local(11, 1, 1))
        monkeypatch.setattr(uplink_consumer, "ingest", Ingest(clock=self.clock))
        w = self.w = Metered()
        self.pid = w.property_id
        self.common = w.account(opening=100000)
        self.master = w.meter(self.common, rated_kw="100")
        self.accounts = {r: w.account(opening=100000) for r in ("R002", "R003", "R004")}
        self.meters = {r: w.meter(a) for r, a in self.accounts.items()}
        w.d.add_room(self.pid, "B1", "F1", "R005", "R005", "30")
        site = w.sim()
        for m in (self.master, *self.meters.values()):
            site.add(SimMeter(m))
        start, end = local(10, 31, 20), local(10, 31, 22)
        rows = {self.master: [(start, "1000.00"), (end, "1100.00"), (local(11, 1, 0, 30), "1110.00")],
                self.meters["R002"]: [(start, "10.00"), (end, "50.00")],
                self.meters["R003"]: [(start, "5.00"), (end, "5.00")],
                self.meters["R004"]: [(start, "0.00"), (end, "20.00")]}
        for meter, readings in rows.items():
            site.send_readings([MeterReading(meter, i + 1, at, Decimal(t)) for i, (at, t) in enumerate(readings)],
                               readings[-1][0])
        assert drain_uplink(uplink_url(), uplink_consumer.handler) >= 4
        self.app = create_app()
        self.company = f"co-{uuid.uuid4().hex[:10]}"
        self.api = f"/admin/api/properties/{self.pid}/apportion-groups"
        self.page = f"/p/{self.pid}/apportion"

    def client(self, role: str = "owner", property_id: str | None = None):
        c = self.app.test_client()
        admins.logged_in(c, admins.make_admin(property_id or self.pid, role=role,
                                              company_id=None if property_id else self.company))
        return c

    def group_a(self) -> dict:
        return {"name": "1 号楼公区照明", "master_meter": self.master, "usage_mode": "master_minus_subs",
                "method": "usage", "vacant_share": False, "loss_threshold_pct": "5", "mode": "bill",
                "members": [{"building_id": "B1", "room_id": "R002", "sub_meters": [self.meters["R002"]]},
                            {"building_id": "B1", "room_id": "R003", "sub_meters": [self.meters["R003"]]},
                            {"building_id": "B1", "room_id": "R004"},
                            {"building_id": "B1", "room_id": "R005"}]}

    def group_b(self) -> dict:
        return {"name": "电梯", "master_meter": self.master, "usage_mode": "master", "method": "area",
                "vacant_share": True, "mode": "deduct",
                "members": [{"building_id": "B1", "room_id": r, "area_m2": a}
                            for r, a in (("R002", "20"), ("R003", "30"), ("R004", "50"), ("R005", "30"))]}


@pytest.fixture
def estate(aws, monkeypatch):
    return Estate(monkeypatch)


def call(client, method: str, url: str, page: str, body: dict | None = None):
    token = admins.csrf_token(client, page)
    return getattr(client, method)(url, json=body, headers={"X-CSRFToken": token})


def shares(run: dict) -> dict[str, int]:
    return {s["room_id"]: s["amount"] for s in run["shares"]}


def bill_lines(account_id: str) -> list:
    """The apportionment lines on the account's bill of PERIOD (none: no bill)."""
    try:
        b = bills.default().bill(f"{account_id}:{PERIOD}")
    except NotFound:
        return []
    return [ln for ln in b.lines if ln.source == "apportion"]


def test_preview_approve_post_through_the_api_and_posting_twice_changes_nothing(estate):
    c = estate.client()
    r = call(c, "post", estate.api, estate.page, estate.group_a())
    assert r.status_code == 201, r.get_json()
    gid = r.get_json()["group_id"]
    r = call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/preview", estate.page)
    assert r.status_code == 200, r.get_json()
    run = r.get_json()
    # hand-worked (module docstring)
    assert [Decimal(run[k]) for k in ("master_usage", "sub_usage", "shared_usage")] == [100, 60, 40]
    assert run["amount"] == 4000
    assert (run["loss_ratio_pct"], run["loss_flag"], run["status"], run["rev"]) == ("40.00", True, "previewed", 1)
    assert shares(run) == {"R002": 2667, "R003": 0, "R004": 1333}  # R005 vacant and out
    assert run["shares"][0]["formula"] == \
        "公摊电量 40.00 kWh × 1.00 元/kWh = 40.00 元，按用量 40.00/60.00 kWh 分摊 = 26.67 元"
    assert bill_lines(estate.accounts["R002"]) == []  # a preview posts nothing
    # approve the preview seen (rev 1)
    r = call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/approve", estate.page, {"rev": 1})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "posted" and r.get_json()["posted_total_fen"] == 4000
    expected = {"R002": 2667, "R004": 1333}
    for room, account in estate.accounts.items():
        lines = bill_lines(account)
        assert [(ln.charge_id, ln.amount) for ln in lines] == (
            [(f"apportion:{gid}:{PERIOD}", expected[room])] if room in expected else [])
    assert bill_lines(estate.accounts["R002"])[0].formula == run["shares"][0]["formula"]
    # again (the API and the service): nothing changes
    again = call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/approve", estate.page, {"rev": 1})
    assert again.status_code == 200 and again.get_json()["status"] == "posted"
    service.post(admins_principal(estate), estate.pid, gid, PERIOD)
    assert sum(ln.amount for a in estate.accounts.values() for ln in bill_lines(a)) == 4000
    # a posted period is not computed again
    r = call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/preview", estate.page)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "apportion_run_decided"
    # the approval is in the action log, once
    now = datetime.now(UTC)
    records, _ = action_log.query(estate.pid, now - timedelta(days=1), now + timedelta(days=1),
                                  action="apportion_approved")
    assert len(records) == 1 and records[0].after["amount"] == 4000
    # the group's periods with their loss ratio and flag
    g = c.get(f"{estate.api}/{gid}").get_json()
    assert [(x["period"], x["loss_ratio_pct"], x["loss_flag"]) for x in g["runs"]] == [(PERIOD, "40.00", True)]


def admins_principal(estate):
    """The estate company's owner as a service principal."""
    from core.domain.admins import AdminPrincipal

    return AdminPrincipal(admin_id="test@example.com", name="测试", company_id=estate.company, role="owner",
                          property_ids=(estate.pid,))


def test_a_crash_midway_through_posting_converges_on_retry(estate):
    who = admins_principal(estate)
    g = service.save_group(who, estate.pid, estate.group_b())
    run = service.preview(who, estate.pid, g.group_id, PERIOD)
    # hand-worked (module docstring)
    assert {s.room_id: s.amount for s in run.result.shares} == {"R002": 1538, "R003": 2308, "R004": 3846,
                                                                 "R005": 2308}
    assert (run.result.posted_total, run.result.owner_total) == (7692, 2308)
    applied = []

    def crash_after_one(charges, actor):
        first, *_ = list(charges)
        applied.append(bills.apply_charges([first], actor=actor))
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError):
        service.approve(who, estate.pid, g.group_id, PERIOD, run.rev, apply=crash_after_one)
    assert service.run(estate.pid, g.group_id, PERIOD).status == "approved"
    entry_id = f"apportion:{g.group_id}:{PERIOD}"

    def fees(account: str) -> list[int]:
        entries, _ = LedgerService().entries(account, limit=100, newest_first=False)
        return [e.amount for e in entries if e.entry_id == entry_id]

    assert fees(estate.accounts["R002"]) == [-1538] and fees(estate.accounts["R004"]) == []
    # the retry (approving again: the run is approved, so it finishes the posting)
    done = service.approve(who, estate.pid, g.group_id, PERIOD, None)
    assert done.status == "posted"
    assert {r: fees(a) for r, a in estate.accounts.items()} == {"R002": [-1538], "R003": [-2308], "R004": [-3846]}
    # balances: opening 1000.00 - metered usage (40, 0, 20 kWh at 1.00) - the share
    balances = {r: LedgerService().state(a, fresh=True).balance for r, a in estate.accounts.items()}
    assert balances == {"R002": 100000 - 4000 - 1538, "R003": 100000 - 2308, "R004": 100000 - 2000 - 3846}


def test_bad_input_is_refused_and_changes_nothing(estate):
    c = estate.client()
    cases = [
        ({**estate.group_a(), "method": "ratio", "members": [{"building_id": "B1", "room_id": "R002", "ratio": "0"}]},
         "apportion_ratio_zero"),
        ({**estate.group_a(), "method": "area", "members": [{"building_id": "B1", "room_id": "R002", "area_m2": "-5"}]},
         "area_m2_negative"),
        ({**estate.group_a(), "master_meter": "m-nowhere"}, "master_meter_not_found"),
        ({**estate.group_a(), "members": [{"building_id": "B1", "room_id": "R404"}]}, "room_not_found"),
        ({**estate.group_a(), "members": [{"building_id": "B1", "room_id": "R002", "sub_meters": ["m-nowhere"]}]},
         "sub_meter_not_found"),
        ({**estate.group_a(), "members": [{"building_id": "B1", "room_id": "R002",
                                           "sub_meters": [estate.meters["R002"], estate.meters["R002"]]}]},
         "sub_meter_duplicate"),
    ]
    for body, code in cases:
        r = call(c, "post", estate.api, estate.page, body)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == code, (code, r.get_json())
        assert r.get_json()["error"]["message"]
    assert c.get(estate.api).get_json() == {"groups": []}
    gid = call(c, "post", estate.api, estate.page, estate.group_a()).get_json()["group_id"]
    # a room in two groups of the same master
    r = call(c, "post", estate.api, estate.page, estate.group_b())
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "member_in_other_group"
    assert "1 号楼公区照明" in r.get_json()["error"]["message"]
    # periods: malformed, not started, and this month (under way: a trial, not approvable)
    for period, code in (("2026-13", "period_invalid"), ("2099-01", "period_future")):
        r = call(c, "post", f"{estate.api}/{gid}/runs/{period}/preview", estate.page)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == code
    month = datetime.now(LOCAL_TZ).strftime("%Y-%m")
    assert call(c, "post", f"{estate.api}/{gid}/runs/{month}/preview", estate.page).status_code == 200
    r = call(c, "post", f"{estate.api}/{gid}/runs/{month}/approve", estate.page, {"rev": 1})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "period_open"
    # approving a preview that is no longer the latest: the group changed since
    assert call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/preview", estate.page).get_json()["rev"] == 1
    r = call(c, "put", f"{estate.api}/{gid}", estate.page, {**estate.group_a(), "loss_threshold_pct": "50", "version": 1})
    assert r.status_code == 200 and r.get_json()["version"] == 2
    r = call(c, "put", f"{estate.api}/{gid}", estate.page, {**estate.group_a(), "version": 1})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "apportion_group_stale"
    r = call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/approve", estate.page, {"rev": 1})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "apportion_preview_stale"
    assert service.run(estate.pid, gid, PERIOD).status == "previewed"
    assert bill_lines(estate.accounts["R002"]) == []
    # re-previewed on the new settings (threshold 50 %: 40 % no longer flagged), then approved
    run = call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/preview", estate.page).get_json()
    assert (run["rev"], run["loss_flag"]) == (2, False)
    assert call(c, "post", f"{estate.api}/{gid}/runs/{PERIOD}/approve", estate.page, {"rev": 2}).status_code == 200


def test_roles_and_property_scoping(estate):
    owner = estate.client()
    gid = call(owner, "post", estate.api, estate.page, estate.group_a()).get_json()["group_id"]
    # a viewer sees, but may not change or approve
    viewer = estate.client("viewer")
    assert viewer.get(f"{estate.api}/{gid}").status_code == 200
    assert viewer.get(f"{estate.page}/{gid}").status_code == 200
    r = call(viewer, "post", f"{estate.api}/{gid}/runs/{PERIOD}/preview", estate.page)
    assert r.status_code == 403
    # another property's admin: not this property's pages, and not its group under their own
    other = Metered()
    stranger = estate.client(property_id=other.property_id)
    assert stranger.get(estate.api).status_code == 404
    assert stranger.get(f"{estate.page}/{gid}").status_code == 404
    theirs = f"/admin/api/properties/{other.property_id}/apportion-groups"
    assert stranger.get(theirs).get_json() == {"groups": []}
    assert stranger.get(f"{theirs}/{gid}").status_code == 404
    r = call(stranger, "post", f"{theirs}/{gid}/runs/{PERIOD}/preview", f"/p/{other.property_id}/apportion")
    assert r.status_code == 404
    # a form post without its CSRF token is refused
    r = owner.post(f"{estate.page}/{gid}/preview", data={"period": PERIOD})
    assert r.status_code == 400 and service.runs(estate.pid, gid) == []


def test_console_pages_create_preview_and_approve(estate):
    c = estate.client()
    token = admins.csrf_token(c, f"{estate.page}/new")
    form = {"csrf_token": token, "name": "2 号公区", "master_meter": estate.master, "usage_mode": "master_minus_subs",
            "method": "usage", "loss_threshold_pct": "5", "mode": "bill",
            "member": ["B1/R002", "B1/R003", "B1/R004", "B1/R005"],
            "subs:B1/R002": estate.meters["R002"], "subs:B1/R003": estate.meters["R003"]}
    r = c.post(f"{estate.page}/new", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    group_url = r.headers["Location"]
    gid = group_url.rsplit("/", 1)[1]
    assert "2 号公区" in c.get(estate.page).get_data(as_text=True)
    r = c.post(f"{group_url}/preview", data={"csrf_token": token, "period": PERIOD})
    assert r.status_code == 302
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "按用量 40.00/60.00 kWh 分摊 = 26.67 元" in page and "40.00%" in page and "超阈值" in page
    assert 'name="rev" value="1"' in page
    # bad input on the form: the page again, with the reason, nothing saved
    r = c.post(f"{estate.page}/new", data={**form, "method": "ratio"})
    assert r.status_code == 422 and "缺少分摊比例" in r.get_data(as_text=True)
    r = c.post(f"{estate.page}/{gid}/runs/{PERIOD}/approve", data={"csrf_token": token, "rev": "1"})
    assert r.status_code == 302
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "已入账" in page and "已审批入账：2 户，合计 40.00 元" in page
    assert len(service.groups(estate.pid)) == 1
