"""The tenant API's bill payment and deposit (/api/v1; docs/billing.md): pay what an issued
bill still owes with WeChat Pay (the same order path as a recharge), and read the deposit
(押金) held for an account. Another tenant's bill or account is a 404 like a missing one."""

from __future__ import annotations

from flask import Blueprint, g
from pydantic import Field
from spectree import Response as SpecResponse

from core.domain.money import yuan
from miniprogram_api import serializers as s
from miniprogram_api.services import payments
from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_bill_pay", __name__, url_prefix="/api/v1")


class BillPaymentCreated(s.RechargeCreated):
    """缴费订单：wx.requestPayment 所需参数；金额为账单当前应缴余额。"""

    bill_id: str


class DepositMovement(ApiModel):
    kind: str = Field(description="take 收取押金 | refund 退还押金 | apply 押金抵扣")
    kind_name: str
    amount_fen: int = Field(description="金额（分），收取为正，退还、抵扣为负")
    amount: str
    method: str
    at: str


class Deposit(ApiModel):
    """账户押金：收取后另行保管，不计入可用余额；退租时退还或抵扣欠费。"""

    account_id: str
    held_fen: int = Field(description="当前押金余额（分）")
    held: str
    movements: list[DepositMovement]


@bp.post("/bills/<bill_id>/pay")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_201=BillPaymentCreated, HTTP_404=ErrorBody, HTTP_409=ErrorBody,
                                 HTTP_429=ErrorBody), tags=["账单"])
def pay_bill(bill_id: str):
    """Pay a bill of mine online: an order for what the bill still owes (WeChat Pay JSAPI)."""
    return BillPaymentCreated.model_validate(payments().create_bill_payment(g.openid, bill_id)), 201


@bp.get("/accounts/<account_id>/deposit")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_200=Deposit, HTTP_404=ErrorBody), tags=["账单"])
def deposit(account_id: str):
    """The deposit held for an account of mine, and its movements (newest first)."""
    from core.services import deposits, tenancy

    d = deposits.of_account(tenancy.require_member(g.openid, account_id))
    return {"account_id": d["account_id"], "held_fen": d["held"], "held": yuan(d["held"]),
            "movements": [{"kind": m["kind"], "kind_name": m["kind_name"], "amount_fen": m["amount"],
                           "amount": yuan(m["amount"]), "method": m["method"], "at": m["at"]}
                          for m in d["movements"]]}
