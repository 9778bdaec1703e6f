"""Batch operations in the console (docs/batch.md) through the real app (Flask's test client,
logged in through the login form, CSRF tokens as a browser sends them) on the emulator: the
form, the Excel template and an uploaded sheet, the dry run page, confirm, the progress
fragment, the JSON API; bad input gets a 4xx with a Chinese message and writes nothing;
roles as the single-room actions have them. Expected balances are worked by hand."""

from __future__ import annotations

import io
import re
import uuid

import boto3
import pytest
from openpyxl import Workbook, load_workbook

from core.integrations.queues import batch_url
from core.store import directory as dstore
from functions import batch as batch_fn
from infra.fakes.sitesim import drain_uplink
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import World


@pytest.fixture
def site(aws):
    sqs = boto3.client("sqs")
    while got := sqs.receive_message(QueueUrl=batch_url(), MaxNumberOfMessages=10).get("Messages"):
        for m in got:
            sqs.delete_message(QueueUrl=batch_url(), ReceiptHandle=m["ReceiptHandle"])
    w = World()
    ids = [w.account(opening=1000) for _ in range(3)]
    app = create_app()
    company = f"co-{uuid.uuid4().hex[:10]}"

    def client(role: str = "owner", property_id: str | None = None):
        c = app.test_client()
        admins.logged_in(c, admins.make_admin(property_id or w.property_id, role=role,
                                              company_id=None if property_id else company))
        return c

    return w, ids, client


def balances(ids):
    found = {a.account_id: a.balance for a in dstore.accounts(ids)}
    return [found[i] for i in ids]


def test_form_dry_run_confirm_and_progress_through_the_pages(site):
    w, ids, client = site
    c = client()
    base = f"/p/{w.property_id}/batch"
    page = c.get(f"{base}/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "新建批量任务" in html and 'value="B1/R001"' in html and "批量操作" in html
    token = admins.csrf_token(c, f"{base}/new")
    r = c.post(base, data={"csrf_token": token, "op": "recharge", "amount": "5.5", "source": "rooms",
                           "rooms": ["B1/R001", "B1/R003"]})
    assert r.status_code == 302
    task_url = r.headers["Location"]
    dry = c.get(task_url).get_data(as_text=True)
    assert "预演结果" in dry and dry.count("余额 10.00") == 2 and dry.count("余额 15.50") == 2
    assert balances(ids) == [1000, 1000, 1000]  # the dry run changed nothing
    task_id = task_url.rsplit("/", 1)[1]
    r = c.post(f"{task_url}/confirm", data={"csrf_token": token, "when": "now"})
    assert r.status_code == 302
    frag = c.get(f"{task_url}/progress").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in frag and "等待执行" in frag
    drain_uplink(batch_url(), batch_fn.worker)
    assert balances(ids) == [1550, 1000, 1550]
    frag = c.get(f"{task_url}/progress").get_data(as_text=True)
    assert "every 2s" not in frag and 'data-settled="true"' in frag and "已充值 5.50 元" in frag
    assert "100%（2/2）" in frag and "已完成" in frag
    listed = c.get(base).get_data(as_text=True)
    assert task_id in listed and "批量充值" in listed
    audit = c.get(f"/p/{w.property_id}/audit").get_data(as_text=True)
    assert "新建批量任务" in audit and "确认执行批量任务" in audit


def test_an_uploaded_sheet_from_the_template_and_a_bad_file(site):
    w, ids, client = site
    c = client()
    base = f"/p/{w.property_id}/batch"
    r = c.get(f"{base}/template/recharge.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(r.data)).active
    assert [cell.value for cell in ws[1]] == ["楼栋编号", "房间编号", "账户编号", "金额（元）"]
    wb = Workbook()
    sheet = wb.active
    sheet.append([cell.value for cell in ws[1]])
    sheet.append(["B1", "R002", None, "7"])
    sheet.append(["B9", "R001", None, "1"])  # not a building of this property
    buf = io.BytesIO()
    wb.save(buf)
    token = admins.csrf_token(c, f"{base}/new")
    r = c.post(base, data={"csrf_token": token, "op": "recharge", "source": "sheet",
                           "file": (io.BytesIO(buf.getvalue()), "rows.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 302
    dry = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "余额 17.00" in dry and "第 3 行：房间 B9/R001 不存在或不属于本物业" in dry
    bad = c.post(base, data={"csrf_token": token, "op": "recharge", "source": "sheet",
                             "file": (io.BytesIO(b"PK not really"), "x.xlsx")}, content_type="multipart/form-data")
    assert bad.status_code == 422 and "无法读取 Excel 文件" in bad.get_data(as_text=True)


def test_bad_input_gets_a_4xx_with_a_chinese_message_and_writes_nothing(site):
    w, ids, client = site
    c = client()
    api = f"/admin/api/properties/{w.property_id}/batch-tasks"
    token = admins.csrf_token(c, f"/p/{w.property_id}/batch/new")
    h = {"X-CSRFToken": token}
    cases = [({"op": "explode"}, "batch_op_invalid", "请选择批量操作类型"),
             ({"op": "recharge", "params": {"amount": 0}, "selection": {"buildings": ["B1"]}}, "amount_invalid", "金额"),
             ({"op": "trip", "params": {}, "selection": {"buildings": ["B1"]}}, "reason_required", "请填写操作原因"),
             ({"op": "recharge", "params": {"amount": 100}, "selection": {}}, "selection_empty", "没有选中"),
             ({"op": "recharge", "params": {"amount": 100}, "rows": "nope"}, "rows_invalid", "rows"),
             ({"op": "tariff", "params": {"plan_id": "not-mine"}, "selection": {"buildings": ["B1"]}}, "plan_not_found",
              "电价方案不存在")]
    for body, code, text in cases:
        r = c.post(api, json=body, headers=h)
        assert 400 <= r.status_code < 500, body
        err = r.get_json()["error"]
        assert err["code"] == code and text in err["message"], (body, err)
    assert c.get(api).get_json() == {"tasks": []}
    # the form: 422 with the message, the values kept
    r = c.post(f"/p/{w.property_id}/batch", data={"csrf_token": token, "op": "deduct", "amount": "abc",
                                                  "source": "rooms", "rooms": ["B1/R001"]})
    assert r.status_code == 422 and "金额必须是数字（元）" in r.get_data(as_text=True)
    # without the CSRF token: 400, nothing made
    r = c.post(api, json={"op": "recharge", "params": {"amount": 100}, "selection": {"buildings": ["B1"]}})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf_invalid"
    assert c.get(api).get_json() == {"tasks": []}
    # an unknown task, a cursor that is not one
    assert c.get(f"{api}/bt-nope").status_code == 404
    assert balances(ids) == [1000, 1000, 1000]


def test_roles_follow_the_single_room_actions(site):
    w, ids, client = site
    api = f"/admin/api/properties/{w.property_id}/batch-tasks"
    body = {"op": "recharge", "params": {"amount": 100}, "selection": {"buildings": ["B1"]}}
    operator = client("operator")
    h = {"X-CSRFToken": admins.csrf_token(operator, f"/p/{w.property_id}/batch/new")}
    r = operator.post(api, json=body, headers=h)
    assert r.status_code == 403 and r.get_json()["error"]["message"] == "没有权限执行此操作"
    assert operator.post(api, json={**body, "op": "settings", "params": {"alarm_levels": [5000, 2000]}},
                         headers=h).status_code == 201
    finance = client("finance")
    hf = {"X-CSRFToken": admins.csrf_token(finance, f"/p/{w.property_id}/batch/new")}
    made = finance.post(api, json=body, headers=hf)
    assert made.status_code == 201 and [p["after"] for p in made.get_json()["preview"]] == ["余额 11.00"] * 3
    viewer = client("viewer")
    hv = {"X-CSRFToken": admins.csrf_token(viewer, f"/p/{w.property_id}/batch/new")}
    assert viewer.post(api, json=body, headers=hv).status_code == 403
    task_id = made.get_json()["task"]["task_id"]
    assert viewer.post(f"{api}/{task_id}/confirm", headers=hv).status_code == 403
    page = viewer.get(f"/p/{w.property_id}/batch/{task_id}").get_data(as_text=True)
    assert "确认执行" not in page and "没有执行该操作的权限" in page
    other = client("owner", property_id=None)
    stranger = client("owner", property_id=World().property_id)  # another company's admin
    assert other.get(f"{api}/{task_id}").status_code == 200
    assert stranger.get(f"{api}/{task_id}").status_code == 404
    assert re.search(r"/batch", other.get(f"/p/{w.property_id}/rooms").get_data(as_text=True))
    assert balances(ids) == [1000, 1000, 1000]
