"""The tenant API's bills (账单, /api/v1; docs/tenant-api.md "Bills", docs/billing.md): an
account's issued bills, and one bill with its lines (name, amount, the formula with its
inputs), payments, status and due date. Drafts are the property's until issued. Another
tenant's account or bill is a 404 exactly like a missing one."""

from __future__ import annotations

from flask import Blueprint, g
from pydantic import Field
from spectree import Response

from core.domain.money import yuan
from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_bills", __name__, url_prefix="/api/v1")

TAGS = ["账单"]


class BillSummary(ApiModel):
    bill_id: str = Field(description="账单编号：<account_id>:<YYYY-MM>")
    period: str = Field(description="账期 YYYY-MM")
    status: str = Field(description="issued 待缴费 | partly_paid 部分缴费 | overdue 已逾期 | paid 已缴清")
    status_name: str
    total_fen: int = Field(description="应缴合计（分）= 各费用明细之和")
    total: str
    paid_fen: int = Field(description="已缴（分）")
    paid: str
    outstanding_fen: int = Field(description="待缴（分）")
    outstanding: str
    late_fee_fen: int = Field(description="其中滞纳金（分）")
    due_date: str | None = Field(None, description="缴费截止日 YYYY-MM-DD")


class BillList(ApiModel):
    bills: list[BillSummary]


class BillLineOut(ApiModel):
    line_id: str = Field(description="明细编号（即费用编号，幂等）")
    name: str = Field(description="费用名称，如 物业费、公摊电费、滞纳金")
    source: str = Field(description="item 费用项 | apportion 公摊 | late_fee 滞纳金 | energy | water | settlement")
    amount_fen: int
    amount: str
    formula: str = Field(description="计算方式（含输入），如 85.50 m² × 2.35 元/m²/月 = 200.93 元")
    inputs: dict = Field(description="计算所用的输入值")
    note: str = Field(description="备注，如 预付余额不足，差额转入账单")


class BillPaymentOut(ApiModel):
    payment_id: str = Field(description="收据编号或微信支付商户订单号")
    method: str = Field(description="cash 现金 | transfer 转账 | wechat 微信支付")
    method_name: str
    amount_fen: int
    amount: str
    paid_at: str = Field(description="缴费时间（UTC）")


class BillDetail(BillSummary):
    lines: list[BillLineOut]
    payments: list[BillPaymentOut]


def _service():
    from core.services import bills  # loaded with the first request (docs/cold-start.md)

    return bills


def _summary(b, today) -> dict:
    status = b.status(today)
    from core.domain.bills import STATUS_NAMES

    return {"bill_id": b.bill_id, "period": b.period, "status": status, "status_name": STATUS_NAMES[status],
            "total_fen": b.total, "total": yuan(b.total), "paid_fen": b.paid, "paid": yuan(b.paid),
            "outstanding_fen": b.outstanding, "outstanding": yuan(b.outstanding), "late_fee_fen": b.late_fee_total,
            "due_date": b.due_date.isoformat() if b.due_date else None}


@bp.get("/accounts/<account_id>/bills")
@tenant_required
@spec.validate(resp=Response(HTTP_200=BillList, HTTP_404=ErrorBody), tags=TAGS)
def bills(account_id: str):
    """The issued bills of an account of mine, newest period first."""
    found, today = _service().tenant_bills(g.openid, account_id)
    return BillList.model_validate({"bills": [_summary(b, today) for b in found]})


@bp.get("/accounts/<account_id>/bills/<bill_id>")
@tenant_required
@spec.validate(resp=Response(HTTP_200=BillDetail, HTTP_404=ErrorBody), tags=TAGS)
def bill(account_id: str, bill_id: str):
    """One bill of mine: each line with its formula, the payments, status and due date."""
    b, today = _service().tenant_bill(g.openid, account_id, bill_id)
    return BillDetail.model_validate({
        **_summary(b, today),
        "lines": [{"line_id": ln.charge_id, "name": ln.name, "source": ln.source, "amount_fen": ln.amount,
                   "amount": yuan(ln.amount), "formula": ln.formula, "inputs": ln.inputs, "note": ln.note}
                  for ln in b.lines],
        "payments": [{"payment_id": p.payment_id, "method": p.method, "method_name": p.method_name,
                      "amount_fen": p.amount, "amount": yuan(p.amount), "paid_at": p.paid_at} for p in b.payments],
    })
