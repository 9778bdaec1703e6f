"""Billing in the console (Flask test client, real login and CSRF) and in the tenant API
(the app over HTTP, logins through the WeChat API emulator), on the emulated AWS stack:
charge items made in forms, a period previewed and run, bills confirmed, issued and paid
at the counter; roles, property scoping (another property's bill is a 404) and the
tenant's view of their own bills only.

Expected amounts are worked by hand (testkit World rooms are 30.00 m²)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import requests

from core.services import directory
from core.services.ledger import LedgerService
from core.store import bills as bstore
from miniprogram_api.app import create_app
from testkit import admins
from testkit.apistack import ApiStack
from testkit.builders import World

ITEM = {"item_id": "fee", "name": "物业费", "category": "property_fee", "basis": "area", "price": "2.35",
        "cycle": "month", "start": "2026-04-10", "mode": "bill", "due_days": "10", "scope": "property"}


@pytest.fixture
def app(aws):
    return create_app()


def client_of(app, who):
    c = app.test_client()
    admins.logged_in(c, who)
    return c


def post(c, url: str, data: dict):
    return c.post(url, data={**data, "csrf_token": admins.csrf_token(c, "/account/password")})


def api(c, method: str, url: str, body=None):
    return c.open(url, method=method, json=body, headers={"X-CSRFToken": admins.csrf_token(c, "/account/password")})


def text(r) -> str:
    return r.get_data(as_text=True)


def test_an_admin_makes_items_runs_a_period_and_takes_a_counter_payment(app, world):
    a1, a2 = world.account(opening=0), world.account(opening=0)
    pid = world.property_id
    c = client_of(app, admins.make_admin(pid, role="owner"))

    r = post(c, f"/p/{pid}/bills/items", ITEM)
    assert r.status_code == 302, text(r)
    page = text(c.get(f"/p/{pid}/bills/items"))
    assert "物业费" in page and "2.35 元/m²/月" in page

    # the preview: 30.00 m² × 2.35 × 21/30 = 49.35 元 for each room
    r = c.get(f"/p/{pid}/bills/run?period=2026-04")
    assert r.status_code == 200
    page = text(r)
    assert "30.00 m² × 2.35 元/m²/月 × 21/30 天（2026-04-10 至 2026-04-30）= 49.35 元" in page
    assert 'id="preview-total">98.70<' in page
    assert bstore.get_bill(a1, "2026-04") is None  # a preview writes nothing

    r = post(c, f"/p/{pid}/bills/run", {"period": "2026-04"})
    assert r.status_code == 302
    r = post(c, f"/p/{pid}/bills/run", {"period": "2026-04"})  # again: nothing more
    assert "此前已生成 2 笔" in text(c.get(r.headers["Location"]))
    assert bstore.get_bill(a1, "2026-04").total == 4935

    listing = text(c.get(f"/p/{pid}/bills?period=2026-04&status=draft"))
    assert f'data-bill="{a1}:2026-04"' in listing and f'data-bill="{a2}:2026-04"' in listing

    bill = f"/p/{pid}/bills/{a1}:2026-04"
    assert post(c, f"{bill}/issue", {}).status_code == 409  # confirm first
    assert post(c, f"{bill}/confirm", {}).status_code == 302
    assert post(c, f"{bill}/issue", {}).status_code == 302
    r = post(c, f"{bill}/pay", {"payment_id": "R-0001", "amount": "49.36", "method": "cash"})
    assert r.status_code == 409 and "超过应缴余额 49.35 元" in text(r)
    assert post(c, f"{bill}/pay", {"payment_id": "R-0001", "amount": "20.00", "method": "cash"}).status_code == 302
    r = post(c, f"{bill}/pay", {"payment_id": "R-0001", "amount": "20.00", "method": "cash"})
    assert "已登记过" in text(c.get(r.headers["Location"]))
    page = text(c.get(bill))
    # due 2026-04-11 (the period's first day + 10 days): past, so the bill reads overdue
    assert 'id="bill-paid">20.00<' in page and "已逾期" in page
    assert bstore.get_bill(a1, "2026-04").paid == 2000

    # the JSON API: the rest by transfer, once
    body = {"payment_id": "T-77", "amount_fen": 2935, "method": "transfer"}
    r = api(c, "POST", f"/admin/api/properties/{pid}/bills/{a1}:2026-04/payments", body)
    assert r.status_code == 201 and r.get_json()["status"] == "paid"
    r = api(c, "POST", f"/admin/api/properties/{pid}/bills/{a1}:2026-04/payments", body)
    assert r.status_code == 200 and r.get_json()["duplicate"] is True
    assert r.get_json()["paid_fen"] == 4935


def test_bad_input_is_a_clear_4xx_and_changes_nothing(app, world):
    world.account()
    pid = world.property_id
    c = client_of(app, admins.make_admin(pid, role="owner"))
    r = post(c, f"/p/{pid}/bills/items", {**ITEM, "price": "-2"})
    assert r.status_code == 422 and "单价必须大于 0" in text(r)
    r = api(c, "POST", f"/admin/api/properties/{pid}/charge-items", {**ITEM, "cycle": "week"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "cycle_invalid"
    r = api(c, "POST", f"/admin/api/properties/{pid}/charge-items", {**ITEM, "start": "2026-05-01", "end": "2026-04-01"})
    assert r.get_json()["error"]["message"] == "结束日期不能早于开始日期"
    assert api(c, "GET", f"/admin/api/properties/{pid}/charge-items").get_json() == {"items": []}
    # versions: a duplicate effective date is refused
    assert api(c, "POST", f"/admin/api/properties/{pid}/charge-items", ITEM).status_code == 201
    v2 = {**ITEM, "price": "2.50", "effective_from": "2026-06-01"}
    assert api(c, "POST", f"/admin/api/properties/{pid}/charge-items/fee/versions", v2).status_code == 201
    r = api(c, "POST", f"/admin/api/properties/{pid}/charge-items/fee/versions", v2)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "version_overlap"
    assert len(api(c, "GET", f"/admin/api/properties/{pid}/charge-items/fee").get_json()["versions"]) == 2
    r = api(c, "POST", f"/admin/api/properties/{pid}/billing/run", {"period": "2026-4"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "period_invalid"


def test_roles_csrf_and_property_scoping(app, world):
    a = world.account()
    other = World()
    b = other.account()
    pid = world.property_id
    boss = admins.make_admin(pid, role="owner")
    owner = client_of(app, boss)
    assert api(owner, "POST", f"/admin/api/properties/{pid}/charge-items", ITEM).status_code == 201
    api(owner, "POST", f"/admin/api/properties/{pid}/billing/run", {"period": "2026-04"})
    api(owner, "POST", f"/admin/api/properties/{other.property_id}/charge-items", ITEM)  # 404: not granted
    assert bstore.get_bill(a, "2026-04").total == 4935

    # a viewer sees, cannot change
    viewer = client_of(app, admins.make_admin(pid, role="viewer", company_id=boss.company_id))
    assert viewer.get(f"/p/{pid}/bills").status_code == 200
    assert post(viewer, f"/p/{pid}/bills/{a}:2026-04/confirm", {}).status_code == 403
    assert 'id="confirm"' not in text(viewer.get(f"/p/{pid}/bills/{a}:2026-04"))
    # no CSRF token: refused, nothing changed
    r = owner.post(f"/p/{pid}/bills/{a}:2026-04/confirm", data={})
    assert r.status_code in (400, 403)
    assert bstore.get_bill(a, "2026-04").state == "draft"

    # the other property's admin: none of it, not even through their own property's URLs
    outsider = client_of(app, admins.make_admin(other.property_id, role="owner"))
    assert outsider.get(f"/p/{pid}/bills").status_code == 404
    assert outsider.get(f"/p/{pid}/bills/{a}:2026-04").status_code == 404
    assert outsider.get(f"/p/{other.property_id}/bills/{a}:2026-04").status_code == 404
    r = api(outsider, "POST", f"/admin/api/properties/{other.property_id}/bills/{a}:2026-04/confirm")
    assert r.status_code == 404
    r = api(outsider, "GET", f"/admin/api/properties/{other.property_id}/bills")
    assert r.status_code == 200 and r.get_json() == {"bills": []}
    assert a not in text(outsider.get(f"/p/{other.property_id}/bills"))
    assert bstore.get_bill(a, "2026-04").state == "draft"
    assert bstore.get_bill(b, "2026-04") is None


# --- the tenant API ----------------------------------------------------------------------------------


@pytest.fixture
def stack(aws, monkeypatch):
    s = ApiStack(monkeypatch)
    yield s
    s.stop()


def test_a_tenant_reads_their_issued_bills_only(stack, world):
    from core.domain.charges import Charge
    from core.services import bills

    a = world.account(opening=1000, overdraft=0)
    openid = f"o{uuid.uuid4().hex[:27]}"
    directory.bind_openid(world.tenant_id, openid)
    auth = stack.login(openid)
    service = bills.Bills()
    rent = Charge(a, world.property_id, "2026-04", "item", "rent", 150000, "租金", formula="1500.00 元/月")
    svc = Charge(a, world.property_id, "2026-04", "item", "svc", 1500, "服务费", formula="15.00 元/月", mode="deduct")
    service.apply_charges([rent, svc], actor="test", due=date(2026, 4, 15))
    base = f"{stack.base}/api/v1/accounts/{a}/bills"
    # a draft is the property's: the tenant sees no bill yet
    r = requests.get(base, headers=auth, timeout=10)
    assert r.status_code == 200 and r.json() == {"bills": []}
    assert requests.get(f"{base}/{a}:2026-04", headers=auth, timeout=10).status_code == 404
    service.transition(world.property_id, f"{a}:2026-04", "confirm", "admin")
    service.transition(world.property_id, f"{a}:2026-04", "issue", "admin")
    service.record_payment(f"{a}:2026-04", "R-9", 50000, "cash", "admin")

    listed = requests.get(base, headers=auth, timeout=10).json()["bills"]
    assert [(x["bill_id"], x["total_fen"], x["paid_fen"], x["outstanding_fen"], x["due_date"]) for x in listed] == [
        (f"{a}:2026-04", 150500, 50000, 100500, "2026-04-15")]
    d = requests.get(f"{base}/{a}:2026-04", headers=auth, timeout=10).json()
    # 10.00 of the 15.00 service fee deducted (balance 10.00, no overdraft), 5.00 billed
    assert [(ln["name"], ln["amount_fen"], ln["formula"]) for ln in d["lines"]] == [
        ("租金", 150000, "1500.00 元/月"), ("服务费", 500, "15.00 元/月")]
    assert d["lines"][1]["note"] == "预付余额不足：已从余额扣 10.00 元，差额 5.00 元转入账单"
    assert [(p["payment_id"], p["amount_fen"], p["method_name"]) for p in d["payments"]] == [("R-9", 50000, "现金")]
    assert d["status"] in ("partly_paid", "overdue") and d["total"] == "1505.00"
    assert LedgerService().balance(a) == 0

    # another tenant's account or bill: 404, like a missing one
    other = World()
    b = other.account()
    other_openid = f"o{uuid.uuid4().hex[:27]}"
    directory.bind_openid(other.tenant_id, other_openid)
    other_auth = stack.login(other_openid)
    assert requests.get(base, headers=other_auth, timeout=10).status_code == 404
    assert requests.get(f"{base}/{a}:2026-04", headers=other_auth, timeout=10).status_code == 404
    r = requests.get(f"{stack.base}/api/v1/accounts/{b}/bills/{a}:2026-04", headers=other_auth, timeout=10)
    assert r.status_code == 404 and "1505.00" not in r.text
    assert requests.get(base, timeout=10).status_code == 401
