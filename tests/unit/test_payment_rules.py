from datetime import UTC, datetime, timedelta

import pytest

from core.domain import payments as p
from core.domain.errors import ValidationError

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
ORDER = p.Order("R20261128160000abcdef123456", "prop", "acct", "t1", "openid-1", 5000, p.PENDING,
                "2026-11-28T08:00:00.000000Z", "2026-11-28T08:15:00.000000Z")
TX = {"appid": "wxapp", "mchid": "1900000109", "out_trade_no": ORDER.out_trade_no, "transaction_id": "4200001",
      "trade_state": "SUCCESS", "amount": {"total": 5000, "payer_total": 5000, "currency": "CNY"}, "payer": {"openid": "openid-1"}}


@pytest.mark.parametrize("amount,code", [(99, "amount_too_small"), (500_001, "amount_too_large"),
                                         (10.0, "amount_not_integer"), ("100", "amount_not_integer"),
                                         (True, "amount_not_integer"), (-100, "amount_too_small")])
def test_amount_limits(amount, code):
    with pytest.raises(ValidationError) as e:
        p.check_amount(amount, p.Limits())
    assert e.value.code == code


def test_out_trade_no_is_unique_and_within_wechat_rules():
    nos = {p.new_out_trade_no(NOW) for _ in range(1000)}
    assert len(nos) == 1000
    assert all(p.check_out_no(n, "x") and len(n) <= 32 for n in nos)


@pytest.mark.parametrize("change,problem", [
    ({}, None),
    ({"appid": "other"}, "appid_mismatch"),
    ({"mchid": "other"}, "mchid_mismatch"),
    ({"trade_state": "NOTPAY"}, "not_success"),
    ({"amount": {"total": 4999, "currency": "CNY"}}, "amount_mismatch"),
    ({"amount": {"total": 5000, "currency": "USD"}}, "currency_mismatch"),
    ({"amount": {"total": 5000}}, "currency_mismatch"),  # WeChat always names the currency
    ({"amount": {"total": True, "currency": "CNY"}}, "amount_mismatch"),
    ({"transaction_id": ""}, "no_transaction_id"),
    ({"payer": {"openid": "someone-else"}}, "payer_mismatch"),
])
def test_transaction_checks(change, problem):
    assert p.transaction_problem({**TX, **change}, ORDER, "wxapp", "1900000109") == problem


def test_unknown_order():
    assert p.transaction_problem(TX, None, "wxapp", "1900000109") == "unknown_order"


def test_timestamp_freshness():
    assert p.timestamp_fresh(str(int(NOW.timestamp())), NOW)
    assert p.timestamp_fresh(str(int((NOW - timedelta(minutes=4)).timestamp())), NOW)
    assert not p.timestamp_fresh(str(int((NOW - timedelta(minutes=6)).timestamp())), NOW)
    assert not p.timestamp_fresh(str(int((NOW + timedelta(minutes=6)).timestamp())), NOW)
    assert not p.timestamp_fresh("soon", NOW)
