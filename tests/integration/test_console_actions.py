"""Room actions of the console (docs/console.md, "Room actions") through the real app
(Flask's test client, logged in through the login form, CSRF tokens as a browser sends
them) on the emulated AWS stack; commands go to the site's real down queue, where the
site stand-in (infra/fakes/sitesim.py) takes them and answers through the uplink.

Expected balances are worked by hand from the amounts in each test (flat plan: 1 yuan/kWh)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.errors import NotFound, ValidationError
from core.integrations.queues import uplink_url
from core.protocol.messages import MeterReading
from core.services import action_log, bindings, tenancy
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import directory as dstore
from core.store import meters as mstore
from functions import uplink_consumer
from infra.fakes.sitesim import SimMeter, drain_uplink
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Clock, Metered

NOW = datetime.now(UTC)


class Room:
    """A Metered property, one room R001 with an account and a meter, the site stand-in,
    and a Flask test client per admin."""

    def __init__(self, opening: int = 5000) -> None:
        self.w = Metered()
        self.pid = self.w.property_id
        self.account = self.w.account(opening=opening)
        self.meter = self.w.meter(self.account)
        self.site = self.w.sim()
        self.site.add(SimMeter(self.meter))
        self.app = create_app()
        self.page = f"/p/{self.pid}/rooms/B1/R001/actions"
        self.api = f"/admin/api/properties/{self.pid}"
        self.seq = 0
        self.company = f"co-{uuid.uuid4().hex[:10]}"

    def client(self, role: str = "owner", property_id: str | None = None):
        """A client logged in as a new admin of this property's company (or, with
        `property_id`, of another company holding that property)."""
        c = self.app.test_client()
        company = None if property_id else self.company
        admins.logged_in(c, admins.make_admin(property_id or self.pid, role=role, company_id=company))
        return c

    def read(self, total: str, hours_ago: float) -> None:
        """A reading of the meter, `hours_ago` before now (the first sets the baseline)."""
        self.seq += 1
        Ingest().reading(self.w.site.site_id, MeterReading(self.meter, self.seq, NOW - timedelta(hours=hours_ago),
                                                           Decimal(total)))

    def commands(self) -> list[tuple[str, str]]:
        """(op, meter) of the commands the site received, applied and answered (results delivered)."""
        got = self.site.take_commands()
        drain_uplink(uplink_url(), uplink_consumer.handler)
        return [(c["op"], c["meter_id"]) for c in got]

    def balance(self) -> int:
        return LedgerService().balance(self.account)

    def log(self, action: str) -> list:
        records, _ = action_log.query(self.pid, NOW - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1),
                                      action=action)
        return records


def token(client, path: str) -> str:
    return admins.csrf_token(client, path)


def post_form(client, room: Room, action: str, data: dict, htmx: bool = True):
    data = {"csrf_token": token(client, room.page), **data}
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"{room.page}/{action}", data=data, headers=headers)


def post_json(client, room: Room, path: str, body: dict, method: str = "post", token_from: str = ""):
    headers = {"X-CSRFToken": token(client, token_from or room.page)}
    return getattr(client, method)(room.api + path, json=body, headers=headers)


def receipt_no_of(html: str) -> str:
    return re.search(r'id="recharge-receipt" name="receipt_no" value="([^"]+)"', html).group(1)


@pytest.fixture
def room(aws) -> Room:
    return Room()


def test_counter_recharge_restores_a_cut_account_once_per_receipt(aws):
    room = Room(opening=500)  # 5.00 yuan
    room.read("100", 2)
    room.read("110", 1)  # 10 kWh = 10.00 yuan: 500 - 1000 = -500, below the cut-off line 0
    assert room.balance() == -500
    assert room.commands() == [("TRIP", room.meter)]
    assert LedgerService().state(room.account, fresh=True).control["cut_state"] == "cut"

    owner = room.client()
    page = owner.get(room.page).get_data(as_text=True)
    assert "柜台充值" in page and 'data-balance>-5.00<' in page
    no = receipt_no_of(page)
    r = post_form(owner, room, "recharge", {"account_id": room.account, "amount": "20", "receipt_no": no})
    assert r.status_code == 200, r.get_data(as_text=True)
    html = r.get_data(as_text=True)
    assert f"收据号 <b>{no}</b>" in html and 'data-balance>15.00<' in html  # -5.00 + 20.00
    assert room.balance() == 1500
    assert room.commands() == [("CLOSE", room.meter)]  # restored: the credit lifted it above the restore line
    assert dstore.get_meter(room.meter).relay_state == "closed"

    again = post_form(owner, room, "recharge", {"account_id": room.account, "amount": "20", "receipt_no": no})
    assert again.status_code == 200 and room.balance() == 1500  # a double click: credited once
    other = post_form(owner, room, "recharge", {"account_id": room.account, "amount": "30", "receipt_no": no})
    assert other.status_code == 422 and f"收据号 {no} 已被使用" in other.get_data(as_text=True)
    assert room.balance() == 1500

    [rec] = room.log("counter_recharge")
    assert rec.target == room.account and rec.before["balance"] == -500 and rec.before["cut_state"] == "cut"
    assert rec.after["balance"] == 1500 and rec.after["amount"] == 2000 and rec.after["receipt_no"] == no
    assert rec.after["cut_state"] == "none"

    receipt = owner.get(f"/p/{room.pid}/receipts/{no}").get_data(as_text=True)
    assert f"data-receipt-no>{no}<" in receipt and "¥ 20.00" in receipt and "¥ 15.00" in receipt
    assert owner.get(f"/p/{room.pid}/receipts/C00000000000000XXXXXX").status_code == 404


def test_bad_input_is_refused_in_chinese_and_changes_nothing(room):
    owner = room.client()
    page = owner.get(room.page).get_data(as_text=True)
    no = receipt_no_of(page)
    for amount, message in (("abc", "充值金额必须是金额"), ("-5", "充值金额必须大于 0"), ("", "请填写充值金额"),
                            ("1.234", "充值金额必须是金额")):
        r = post_form(owner, room, "recharge", {"account_id": room.account, "amount": amount, "receipt_no": no})
        assert r.status_code == 422 and message in r.get_data(as_text=True), (amount, r.get_data(as_text=True)[:300])
    r = post_form(owner, room, "recharge", {"account_id": room.account, "amount": "10", "receipt_no": "bad no!"})
    assert r.status_code == 422 and "receipt_no 格式无效" in r.get_data(as_text=True)
    r = post_json(owner, room, f"/accounts/{room.account}/counter-recharges", {"amount": "1000"})
    assert r.status_code == 400 and r.get_json()["error"]["message"] == "amount 必须是整数（金额以分为单位）"
    r = post_form(owner, room, "settings", {"account_id": room.account, "alarm1": "10", "alarm2": "40"})
    assert r.status_code == 422 and "告警金额必须从高到低且不重复" in r.get_data(as_text=True)
    r = post_form(owner, room, "relay", {"account_id": room.account, "meter_id": room.meter, "op": "TRIP",
                                         "reason": "  "})
    assert r.status_code == 422 and "请填写操作原因" in r.get_data(as_text=True)
    r = post_json(owner, room, f"/meters/{room.meter}/relay", {"op": "TRIP"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "reason_required"
    r = post_form(owner, room, "open-account", {"phone": "123", "tenant_name": "王五"})
    assert r.status_code == 422 and "手机号格式无效" in r.get_data(as_text=True)
    r = post_json(owner, room, f"/accounts/{room.account}/settings", {"overdraft": 100}, method="patch")
    assert r.status_code == 400 and "未知的设置项" in r.get_json()["error"]["message"]
    # nothing changed: the balance, the settings, the meter, the log
    assert room.balance() == 5000 and room.commands() == []
    state = LedgerService().state(room.account, fresh=True)
    assert state.control["alarm_levels"] is None and state.overdraft_limit == 0
    assert len(dstore.accounts_of_building(room.pid, "B1")) == 1
    assert not any(room.log(a) for a in ("counter_recharge", "account_settings", "manual_trip", "account_opened"))


def test_roles_and_properties(room):
    viewer = room.client("viewer")
    page = viewer.get(room.page).get_data(as_text=True)
    assert "data-balance>50.00<" in page and "当前角色只能查看" in page
    assert not re.search(r"btn-(money|operate|danger)", page)
    assert post_form(viewer, room, "recharge", {"account_id": room.account, "amount": "10",
                                                "receipt_no": "C123456789"}).status_code == 403
    finance = room.client("finance")
    page = finance.get(room.page).get_data(as_text=True)
    assert "btn-money" in page and "btn-operate" not in page and "btn-danger" not in page
    r = post_json(finance, room, f"/meters/{room.meter}/relay", {"op": "TRIP", "reason": "检修"})
    assert r.status_code == 403 and r.get_json()["error"]["message"] == "没有权限执行此操作"
    assert post_json(finance, room, f"/accounts/{room.account}/close", {"method": "cash"}).status_code == 403
    operator = room.client("operator")
    page = operator.get(room.page).get_data(as_text=True)
    assert "btn-operate" in page and "btn-money" not in page
    r = post_json(operator, room, f"/accounts/{room.account}/refunds",
                  {"method": "cash", "amount": 100, "reason": "多收"})
    assert r.status_code == 403
    stranger = room.client("owner", property_id=Metered().property_id)  # another company's owner
    assert stranger.get(room.page).status_code == 404
    r = post_json(stranger, room, f"/accounts/{room.account}/counter-recharges", {"amount": 100},
                  token_from="/account/password")
    assert r.status_code == 404 and r.get_json()["error"]["message"] == "物业不存在"
    assert room.balance() == 5000 and room.commands() == []
    r = post_json(finance, room, f"/accounts/{room.account}/counter-recharges", {"amount": 1234})
    assert r.status_code == 201 and r.get_json()["entry"]["balance_after"] == 6234  # 5000 + 1234
    assert room.balance() == 6234


def test_manual_trip_holds_until_manual_close(room):
    owner = room.client()
    r = post_form(owner, room, "relay", {"account_id": room.account, "meter_id": room.meter, "op": "TRIP",
                                         "reason": "线路检修"})
    assert r.status_code == 200 and "分闸命令" in r.get_data(as_text=True)
    assert room.commands() == [("TRIP", room.meter)]
    assert dstore.get_meter(room.meter).relay_state == "open"
    Control().reconcile_account(room.account)  # the reconciler keeps the trip: it is the intended state now
    assert room.commands() == []
    assert "手动分闸" in owner.get(room.page).get_data(as_text=True)

    r = post_json(owner, room, f"/meters/{room.meter}/relay", {"op": "CLOSE", "reason": "检修完毕"})
    assert r.status_code == 201 and r.get_json()["op"] == "CLOSE"
    assert room.commands() == [("CLOSE", room.meter)]
    assert dstore.get_meter(room.meter).relay_state == "closed"
    Control().reconcile_account(room.account)
    assert room.commands() == []
    [trip] = room.log("manual_trip")
    [close] = room.log("manual_close")
    assert trip.after["reason"] == "线路检修" and trip.before == {"relay": "unknown"} and trip.target == room.meter
    assert close.after["reason"] == "检修完毕" and close.before == {"relay": "open"}


def test_manual_close_of_an_account_cut_for_money_is_refused(aws):
    room = Room(opening=500)
    room.read("100", 2)
    room.read("110", 1)  # -500: cut
    assert room.commands() == [("TRIP", room.meter)]
    owner = room.client()
    r = post_json(owner, room, f"/meters/{room.meter}/relay", {"op": "CLOSE", "reason": "租户要求"})
    assert r.status_code == 409 and "余额不足已断电" in r.get_json()["error"]["message"]
    assert room.commands() == [] and not room.log("manual_close")


def test_settings_and_keep_supply(room):
    owner = room.client()
    r = post_form(owner, room, "settings", {"account_id": room.account, "alarm1": "40", "alarm2": "10", "alarm3": "",
                                            "overdraft_limit": "30", "restore_line": "5"})
    assert r.status_code == 200, r.get_data(as_text=True)
    state = LedgerService().state(room.account, fresh=True)
    assert state.overdraft_limit == 3000 and state.control["alarm_levels"] == [4000, 1000]
    assert state.control["restore_line"] == 500
    [rec] = room.log("account_settings")
    assert rec.before["overdraft_limit"] == 0 and rec.before["alarm_levels"] is None
    assert rec.after["overdraft_limit"] == 3000 and rec.after["alarm_levels"] == [4000, 1000]
    assert rec.after["restore_line"] == 500

    r = post_form(owner, room, "keep-supply", {"account_id": room.account, "keep_supply": "on"})
    assert r.status_code == 200 and LedgerService().state(room.account, fresh=True).control["keep_supply"] is True
    r = post_json(owner, room, f"/meters/{room.meter}/keep-supply", {"keep_supply": True}, method="put")
    assert r.status_code == 200 and r.get_json()["keep_supply"] is True and dstore.get_meter(room.meter).keep_supply
    r = post_json(owner, room, f"/meters/{room.meter}/keep-supply", {"keep_supply": "yes"}, method="put")
    assert r.status_code == 400
    [ks] = room.log("meter_keep_supply")
    assert ks.before == {"keep_supply": False} and ks.after == {"keep_supply": True}
    assert len(room.log("account_settings")) == 2  # the account's keep-supply is a setting too


def test_replace_meter_bills_the_old_one_to_its_final_reading(room):
    room.read("100", 2)
    owner = room.client()
    new_id = f"m-new-{uuid.uuid4().hex[:6]}"
    r = post_form(owner, room, "replace-meter", {"account_id": room.account, "meter_id": room.meter,
                                                 "final_total": "112.5", "new_meter_id": new_id,
                                                 "initial_total": "3"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert room.balance() == 3750  # 5000 - 12.5 kWh x 1.00 yuan
    old, new = dstore.get_meter(room.meter), dstore.get_meter(new_id)
    assert old.retired and not new.retired
    assert (new.account_id, new.bus, new.address, new.plan_id) == (room.account, old.bus, old.address, old.plan_id)
    assert mstore.load_meter(new_id).baseline.total == Decimal("3")
    [rec] = room.log("meter_replaced")
    assert rec.before["meter_id"] == room.meter and rec.before["last_total"] == "100"
    assert rec.after["new_meter_id"] == new_id and rec.after["final_total"] == "112.5"
    assert rec.after["final_reading"] == "billed"
    r = post_form(owner, room, "replace-meter", {"account_id": room.account, "meter_id": room.meter,
                                                 "final_total": "113", "new_meter_id": "m-other", "initial_total": "0"})
    assert r.status_code == 422 and "该表已被更换" in r.get_data(as_text=True)


def test_close_account_refunds_the_balance_in_cash_and_trips(room):
    owner = room.client()
    page = owner.get(room.page).get_data(as_text=True)
    no = re.search(r'id="form-close".*?name="receipt_no" value="([^"]+)"', page, re.S).group(1)
    r = post_form(owner, room, "close", {"account_id": room.account, "method": "cash", "receipt_no": no})
    assert r.status_code == 200 and "账户已关闭" in r.get_data(as_text=True)
    assert room.balance() == 0  # 5000 - 5000 refunded
    assert dstore.get_account(room.account).status == "CLOSED"
    assert room.commands() == [("TRIP", room.meter)]
    [rec] = room.log("account_closed")
    assert rec.before["balance"] == 5000 and rec.after["balance"] == 0 and rec.after["status"] == "CLOSED"
    assert rec.after["refunds"] == [{"method": "cash", "receipt_no": no, "amount": 5000}]
    receipt = owner.get(f"/p/{room.pid}/receipts/{no}").get_data(as_text=True)
    assert "预付费退款凭证" in receipt and "¥ 50.00" in receipt and "¥ 0.00" in receipt
    assert "该房间空置" not in owner.get(room.page).get_data(as_text=True)  # an owner sees the open form
    assert "开户" in owner.get(room.page).get_data(as_text=True)


def test_close_account_in_arrears_is_refused(aws):
    room = Room(opening=500)
    room.read("100", 2)
    room.read("110", 1)  # -500
    room.commands()
    r = post_json(room.client(), room, f"/accounts/{room.account}/close", {"method": "cash"})
    assert r.status_code == 409 and r.get_json()["error"]["message"] == "账户欠费 5.00 元，请先收取欠款后再销户"
    assert dstore.get_account(room.account).status == "OPEN" and room.balance() == -500 and room.commands() == []


def test_binding_code_issue_and_redeem(room):
    owner = room.client()
    r = post_form(owner, room, "binding-code", {"account_id": room.account})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<svg" in html and "data-binding-code>" in html
    shown = re.search(r"data-binding-code>([A-Z0-9]{4}-[A-Z0-9]{4})<", html).group(1)
    r = post_json(owner, room, f"/accounts/{room.account}/binding-codes", {})
    assert r.status_code == 201 and r.get_json()["qr_svg"].startswith("<svg")
    second = r.get_json()["code"]
    assert second != shown
    [first_rec, second_rec] = sorted(room.log("binding_code_issued"), key=lambda x: x.at)
    assert first_rec.after["code"] == shown and first_rec.after["tenant_id"] == room.w.tenant_id

    openid = f"o{uuid.uuid4().hex[:20]}"
    got = bindings.redeem_binding_code(shown.lower(), openid)  # typed in lower case, with the dash
    account = dstore.get_account(room.account)
    assert got == {"property_id": room.pid, "account_id": room.account, "name": account.name,
                   "property_name": "测试物业", "room_name": account.room_id}
    # a code makes the WeChat user a member of the account (a roommate or the tenant), not the
    # tenant record's own WeChat user (docs/tenant-auth.md, "Bindings")
    assert [a.account_id for a in tenancy.accounts_of(openid)] == [room.account]
    assert dstore.get_tenant(room.w.tenant_id).openid != openid
    assert bindings.redeem_binding_code(shown, openid) == got  # a retry: same answer
    [bound] = room.log("tenant_bound")  # audited once, the WeChat user as the actor (never the openid)
    assert bound.role == "tenant" and bound.target == f"account:{room.account}" and openid not in bound.actor_id
    with pytest.raises(NotFound):
        bindings.redeem_binding_code(shown, f"o{uuid.uuid4().hex[:20]}")  # single use
    later = Clock(datetime.now(UTC) + timedelta(hours=25))
    with pytest.raises(NotFound):
        bindings.redeem_binding_code(second, f"o{uuid.uuid4().hex[:20]}", clock=later)  # expired after a day
    with pytest.raises(NotFound):
        bindings.redeem_binding_code("ZZZZ-ZZZZ", openid)
    with pytest.raises(ValidationError):
        bindings.redeem_binding_code("ab", openid)
    assert bindings.redeem_binding_code(second, openid)["account_id"] == room.account  # still valid today


def test_open_account_and_add_meters(room):
    room.w.d.add_room(room.pid, "B1", "F1", "R900", "900", "25")
    owner = room.client()
    page = f"/p/{room.pid}/rooms/B1/R900/actions"
    html = owner.get(page).get_data(as_text=True)
    assert "空置" in html and "form-open-account" in html
    data = {"csrf_token": token(owner, page), "phone": "13900001111", "tenant_name": "李四", "name": "",
            "overdraft_limit": "10"}
    r = owner.post(f"{page}/open-account", data=data, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.get_data(as_text=True)
    [account] = [a for a in dstore.accounts_of_building(room.pid, "B1") if a.room_id == "R900"]
    assert (account.name, account.balance, account.overdraft_limit) == ("900", 0, 1000)
    assert dstore.get_tenant(account.tenant_id).name == "李四"
    # a tenant registered before needs only the phone
    r = post_json(owner, room, "/rooms/B1/R900/accounts", {"phone": "13800000000", "name": "二号户"})
    assert r.status_code == 201 and r.get_json()["tenant_id"] == room.w.tenant_id
    [opened, _] = room.log("account_opened")
    assert opened.after["room"] == "B1/R900"

    for address, meter_id in ((40, "m-a-" + uuid.uuid4().hex[:6]), (41, "m-b-" + uuid.uuid4().hex[:6])):
        r = post_json(owner, room, f"/accounts/{account.account_id}/meters",
                      {"meter_id": meter_id, "site_id": room.w.site.site_id, "kind": "electric_1p",
                       "model": "acrel-ddsy1352", "bus": "bus1", "address": address, "plan_id": room.w.plan_id})
        assert r.status_code == 201 and r.get_json()["plan_id"] == room.w.plan_id
    assert len(dstore.meters_of_account(account.account_id)) == 2  # one account, several meters
    r = post_json(owner, room, f"/accounts/{account.account_id}/meters",
                  {"meter_id": "m-c", "site_id": room.w.site.site_id, "kind": "electric_1p",
                   "model": "acrel-ddsy1352", "bus": "bus1", "address": 41})
    assert r.status_code == 409 and r.get_json()["error"]["message"] == "该总线上的地址已被占用"
    assert len(room.log("meter_added")) == 2


def test_assign_tariff(room):
    owner = room.client()
    r = post_json(owner, room, f"/meters/{room.meter}/tariff", {"plan_id": room.w.water_plan_id}, method="put")
    assert r.status_code == 400 and r.get_json()["error"]["message"] == "电价方案与表计类型不符"
    other = Metered().plan_id  # another property's plan
    r = post_form(owner, room, "tariff", {"account_id": room.account, "meter_id": room.meter, "plan_id": other})
    assert r.status_code == 404  # never reveals another property's plan
    from core.services import tariffs
    from testkit.builders import FLAT_PLAN

    plan = tariffs.import_plan(room.pid, dict(FLAT_PLAN, plan_id=f"plan-{uuid.uuid4().hex[:6]}"), "test").plan_id
    r = post_form(owner, room, "tariff", {"account_id": room.account, "meter_id": room.meter, "plan_id": plan})
    assert r.status_code == 200 and dstore.get_meter(room.meter).plan_id == plan
    [rec] = room.log("tariff_assigned")
    assert rec.before == {"plan_id": room.w.plan_id} and rec.after == {"plan_id": plan}


def test_refunds_to_wechat_and_in_cash_then_close_by_wechat(aws, monkeypatch):
    from core.store import payments as pstore
    from tests.integration.test_payments import Stack, paid_order

    stack = Stack(monkeypatch)
    try:
        w, account, out_trade_no = paid_order(stack, 5000)  # a tenant paid 50.00 yuan by WeChat
        app = create_app()
        company = f"co-{uuid.uuid4().hex[:10]}"
        finance, operator = app.test_client(), app.test_client()
        admins.logged_in(finance, admins.make_admin(w.property_id, role="finance", company_id=company))
        admins.logged_in(operator, admins.make_admin(w.property_id, role="operator", company_id=company))
        api = f"/admin/api/properties/{w.property_id}/accounts/{account}"
        page = f"/p/{w.property_id}/rooms/B1/R001/actions"

        def call(client, path, body):
            return client.post(api + path, json=body, headers={"X-CSRFToken": token(client, page)})

        assert "微信原路退回" in finance.get(page).get_data(as_text=True)
        orders = finance.get(api + "/refundable-orders").get_json()["orders"]
        assert orders == [{"out_trade_no": out_trade_no, "amount": 5000, "refundable": 5000,
                           "paid_at": pstore.get_order(out_trade_no).paid_at}]
        assert call(operator, "/refunds", {"method": "wechat", "amount": 2000, "reason": "多充",
                                           "out_trade_no": out_trade_no}).status_code == 403
        r = call(finance, "/refunds", {"method": "wechat", "amount": 6000, "reason": "多充",
                                       "out_trade_no": out_trade_no})
        assert r.status_code == 409 and LedgerService().balance(account) == 5000  # more than the balance
        r = call(finance, "/refunds", {"method": "wechat", "amount": 2000, "reason": "多充",
                                       "out_trade_no": out_trade_no})
        assert r.status_code == 201, r.get_data(as_text=True)
        refund = r.get_json()
        assert refund["method"] == "wechat" and refund["amount"] == 2000
        assert LedgerService().balance(account) == 3000  # 5000 - 2000
        assert pstore.get_order(out_trade_no).refunded == 2000
        r = call(finance, "/refunds", {"method": "cash", "amount": 1000, "reason": "退押金", "receipt_no": "CR0001X"})
        assert r.status_code == 201 and LedgerService().balance(account) == 2000  # 3000 - 1000
        records, _ = action_log.query(w.property_id, NOW - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))
        by_action = {x.action: x for x in records}
        assert by_action["refund_wechat"].before["balance"] == 5000
        assert by_action["refund_wechat"].after["balance"] == 3000
        assert by_action["refund_wechat"].after["out_refund_no"] == refund["out_refund_no"]
        assert by_action["refund_cash"].after["receipt_no"] == "CR0001X"
        assert by_action["refund_cash"].after["balance"] == 2000

        owner = app.test_client()
        admins.logged_in(owner, admins.make_admin(w.property_id, role="owner", company_id=company))
        r = call(owner, "/close", {"method": "wechat"})
        assert r.status_code == 200, r.get_data(as_text=True)
        result = r.get_json()
        assert LedgerService().balance(account) == 0  # 2000 refunded to WeChat (of the 3000 still refundable)
        assert [x["amount"] for x in result["refunds"]] == [2000] and result["tripped"] == []  # no meters here
        assert pstore.get_order(out_trade_no).refunded == 4000
        status = dstore.get_account(account).status
        assert status == ("CLOSED" if result["closed"] else "OPEN")
    finally:
        stack.stop()
