"""The tenant API's settlement statement (退租结算单, /api/v1; docs/billing.md "Move-in,
move-out and transfer"): what the final readings cost, how the charge items were prorated
to the move-out day, the deposit offset, what was refunded and what is still owed. Another
tenant's account is a 404 exactly like one without a settlement."""

from __future__ import annotations

from flask import Blueprint, g
from pydantic import Field
from spectree import Response

from core.domain.money import yuan
from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_settlement", __name__, url_prefix="/api/v1")

TAGS = ["结算"]


class FinalReading(ApiModel):
    meter_id: str
    source: str = Field(description="bridge 远程抄表 | admin 人工录入（离线表计）")
    read_at: str | None = Field(description="止码的抄表时间（UTC）")
    total: str | None = Field(description="止码")
    registers: dict[str, str] = Field(description="分时读数：sharp 尖 / peak 峰 / flat 平 / valley 谷")
    amount_fen: int = Field(description="止码这次读数的电费/水费（分）")


class ItemLine(ApiModel):
    name: str = Field(description="费用名称，如 租金、物业费")
    period: str = Field(description="账期 YYYY-MM")
    charged_fen: int = Field(description="按天补收（分）")
    credited_fen: int = Field(description="未使用天数退还（分）")
    text: str = Field(description="计算方式（含输入），如 3000.00 元/月 × 10/31 天 = 967.74 元")


class Settlement(ApiModel):
    account_id: str
    day: str = Field(description="退租日期（租户最后一天，含）")
    status: str = Field(description="closing 待结清 | refunding 退款处理中 | settled 已结清")
    status_name: str
    readings: list[FinalReading]
    items: list[ItemLine]
    balance_fen: int = Field(description="计入止码与费用调整后的预付余额（分）")
    open_bills_fen: int = Field(description="结算时未结清的账单合计（分）")
    deposit_held_fen: int
    deposit_applied_fen: int = Field(description="押金抵扣（分）")
    deposit_refunded_fen: int = Field(description="押金退还（分）")
    bills_paid_from_balance_fen: int = Field(description="余额抵扣账单（分）")
    refund_fen: int = Field(description="余额退款（分）")
    refund_method: str = Field(description="cash 现金 | wechat 微信原路退回")
    arrears_fen: int = Field(description="转入最终账单的欠费（分）")
    refund_total_fen: int = Field(description="合计应退（分）= 余额退款 + 押金退还")
    refund_total: str
    still_owed_fen: int = Field(description="合计尚欠（分）：未结账单 + 欠费，缴清后为 0")
    still_owed: str


@bp.get("/accounts/<account_id>/settlement")
@tenant_required
@spec.validate(resp=Response(HTTP_200=Settlement, HTTP_404=ErrorBody), tags=TAGS)
def settlement(account_id: str):
    """The move-out settlement statement of an account of mine."""
    from core.services import move_out  # loaded with the first request (docs/cold-start.md)

    s = move_out.tenant_statement(g.openid, account_id)
    owed = s.get("still_owed_now", s["still_owed"])
    return Settlement.model_validate({
        "account_id": s["account_id"], "day": s["day"], "status": s["status"], "status_name": s["status_name"],
        "readings": [{"meter_id": r["meter_id"], "source": r["source"], "read_at": r["read_at"], "total": r["total"],
                      "registers": r["registers"], "amount_fen": r["fen"]} for r in s["readings"]],
        "items": [{"name": i["name"], "period": i["period"], "charged_fen": i["charged"],
                   "credited_fen": i["credited"], "text": i["text"]} for i in s["items"]],
        "balance_fen": s["balance"], "open_bills_fen": s["owed_bills"], "deposit_held_fen": s["deposit"]["held"],
        "deposit_applied_fen": s["deposit"]["applied"], "deposit_refunded_fen": s["deposit"]["refunded"],
        "bills_paid_from_balance_fen": sum(p["amount"] for p in s["bill_payments"]), "refund_fen": s["refund"],
        "refund_method": s["method"], "arrears_fen": s["arrears"], "refund_total_fen": s["refund_total"],
        "refund_total": yuan(s["refund_total"]), "still_owed_fen": owed, "still_owed": yuan(owed),
    })
