"""WeChat Pay's trade bill (CSV) as the reconciliation reads it (core/integrations/wechatpay.py)."""

import pytest

from core.domain.errors import FeikongError
from core.integrations.wechatpay import parse_trade_bill


def test_trade_bill_parsing():
    bill = (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
        "手续费,费率,订单金额,申请退款金额,费率备注\n"
        "`2026-11-27 10:00:00,`wxapp,`1900000109,`0,`,`4200001,`R1,`o1,`JSAPI,`SUCCESS,`OTHERS,`CNY,`50.00,`0.00,"
        "`0,`0,`0.00,`0.00,`,`,`充值,`,`0.30,`0.60%,`50.00,`0.00,`\n"
        "`2026-11-27 11:00:00,`wxapp,`1900000109,`0,`,`4200002,`R2,`o1,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
        "`500001,`F1,`10.00,`0.00,`ORIGINAL,`SUCCESS,`充值,`,`-0.06,`0.60%,`0.00,`10.00,`\n"
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
        "`2,`50.00,`10.00,`0.00,`0.24,`50.00,`10.00\n"
    )
    assert parse_trade_bill(bill) == {"R1": {"transaction_id": "4200001", "amount": 5000}}


def test_an_unreadable_bill_is_a_clear_error():
    with pytest.raises(FeikongError) as e:
        parse_trade_bill("时间,金额\n`2026-11-27,`50.00\n")
    assert e.value.code == "bill_unreadable"
    assert parse_trade_bill("") == {}
