"""The demo's tenant phone page (infra/demo/wechat.py) refuses what a person might type
with a 4xx and a Chinese sentence, before anything is ordered or paid."""

from __future__ import annotations

import pytest
import requests

from core.services.ledger import LedgerService
from core.store import payments as pstore
from infra.demo import wechat as demo_wechat
from infra.fakes.wechatpay_emulator import BackgroundServer


@pytest.fixture
def phone(world):
    # No payment stack behind it: every case below must be refused before it is needed.
    srv = BackgroundServer(demo_wechat.create_app(None, "http://127.0.0.1:9", world.property_id)).start()
    yield srv.url
    srv.stop()


@pytest.mark.parametrize("amount,words", [
    ("五十", "金额格式无效"), ("abc", "金额格式无效"), ("", "金额格式无效"), ("1e999999999", "金额格式无效"),
    ("NaN", "金额格式无效"), ("1.234", "金额格式无效"), ("-5", "金额格式无效"), ("50,00", "金额格式无效"),
    ("99999999", "金额格式无效"), ("0", "充值金额必须大于 0 元"), ("0.00", "充值金额必须大于 0 元"),
])
def test_bad_amounts_are_a_400_in_chinese(phone, world, amount, words):
    account = world.account(opening=100)
    r = requests.post(f"{phone}/pay", data={"account_id": account, "amount": amount}, timeout=10)
    assert r.status_code == 400 and words in r.text and r.headers["Content-Type"].startswith("text/html")
    assert LedgerService().balance(account) == 100 and pstore.orders_of_account(account) == []


@pytest.mark.parametrize("form,status,words", [
    ({"amount": "50.00"}, 400, "请选择要充值的账户"),
    ({"account_id": "", "amount": "50.00"}, 400, "请选择要充值的账户"),
    ({"account_id": "acct#A101", "amount": "50.00"}, 400, "账户编号格式无效"),
    ({"account_id": "x" * 3000, "amount": "50.00"}, 400, "账户编号格式无效"),
    ({"account_id": "acct-nobody", "amount": "50.00"}, 404, "账户不存在"),
])
def test_missing_or_unknown_accounts_are_a_4xx_in_chinese(phone, form, status, words):
    r = requests.post(f"{phone}/pay", data=form, timeout=10)
    assert (r.status_code, words in r.text) == (status, True), r.text


def test_another_propertys_account_is_not_found(phone, world):
    from testkit.builders import World

    elsewhere = World().account(opening=100)
    r = requests.post(f"{phone}/pay", data={"account_id": elsewhere, "amount": "50.00"}, timeout=10)
    assert r.status_code == 404 and "账户不存在" in r.text
