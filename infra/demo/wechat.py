"""The demo's stand-in for a tenant's phone: pick an account, pay, watch the money arrive.

It walks the real path: a wx.login() code from the WeChat API emulator, POST /api/v1/login
and POST /api/v1/recharges on the product's API, the tenant paying at the WeChat Pay
emulator, and the emulator's signed, encrypted notification to the notification
function behind the local API Gateway, which credits the ledger and restores supply.
"""

from __future__ import annotations

import html
import re

import requests
from flask import Flask, request

from core.domain.money import parse_yuan, yuan
from core.domain.naming import id_problem
from core.services import directory
from core.store import directory as dstore

_AMOUNT_RE = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")  # yuan, below 10 million; the API applies the limits


def create_app(paystack, api_base: str, property_id: str) -> Flask:
    app = Flask("demo-wechat")

    def accounts():
        out = []
        for b in directory.property_overview(property_id)["buildings"]:
            for row in b["rooms"]:
                out.extend(row["accounts"])
        return out

    @app.get("/")
    def index():
        options = "".join(
            f'<option value="{a.account_id}">{html.escape(a.name)}（余额 {yuan(a.balance)} 元'
            f'{"，已断电" if a.cut_state == "cut" else ""}）</option>' for a in accounts())
        return f"""<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>模拟微信支付 · 费控演示</title>
<body style="font-family:sans-serif;margin:2rem"><h1>模拟租户手机：微信支付充值</h1>
<form method="post" action="/pay"><p><select name="account_id">{options}</select></p>
<p>金额（元）：<input name="amount" value="50.00" size="8"> <button>支付</button></p></form>
<p>流程：微信登录 → 创建充值订单 → 在微信支付模拟器付款 → 支付通知（签名+加密）→ 入账并复电。</p></body></html>"""

    def refusal(message: str, status: int):
        return (f'<!doctype html><html lang="zh-CN"><meta charset="utf-8"><p>{html.escape(message)}</p>'
                '<p><a href="/">返回</a></p></html>', status, {"Content-Type": "text/html; charset=utf-8"})

    @app.post("/pay")
    def pay():
        account_id = request.form.get("account_id", "").strip()
        if not account_id:
            return refusal("请选择要充值的账户", 400)
        if id_problem(account_id):
            return refusal("账户编号格式无效", 400)
        account = dstore.get_account(account_id)
        if account is None or account.property_id != property_id:
            return refusal("账户不存在", 404)
        text = request.form.get("amount", "").strip()
        if not _AMOUNT_RE.fullmatch(text):
            return refusal("金额格式无效：请输入以元为单位的数字，最多两位小数，例如 50.00", 400)
        amount = parse_yuan(text)
        if amount <= 0:
            return refusal("充值金额必须大于 0 元", 400)
        openid = f"demo-openid-{account.room_id}"
        code = paystack.api.issue_code(openid)
        token = requests.post(f"{api_base}/api/v1/login", json={"code": code}, timeout=10).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = requests.post(f"{api_base}/api/v1/recharges", json={"account_id": account_id, "amount": amount},
                          headers=auth, timeout=10)
        if r.status_code != 201:
            return f"下单失败：{html.escape(r.json()['error']['message'])}", r.status_code
        no = r.json()["out_trade_no"]
        paystack.pay.pay(no)
        paystack.pay.wait_for_deliveries(10)
        status = requests.get(f"{api_base}/api/v1/recharges/{no}", headers=auth, timeout=10).json()["status"]
        after = dstore.get_account(account_id)
        return (f'<p>订单 {no}：{status}</p><p>{html.escape(after.name)} 余额 {yuan(after.balance)} 元，'
                f'供电：{"已断电" if after.cut_state == "cut" else "正常"}</p><p><a href="/">返回</a></p>')

    return app
