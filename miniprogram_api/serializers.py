"""Response bodies: what each route returns, built from the services' domain objects;
and the tenant API's request and response models (pydantic, checked by spectree:
miniprogram_api/tenant_spec.py).

Money goes out twice: `*_fen` (integer fen, for programs) and a yuan string (for people).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, StrictInt

from core.domain.money import yuan
from miniprogram_api.tenant_spec import ApiModel

if TYPE_CHECKING:  # type hints only: not imported on the tenant API's cold start (docs/cold-start.md)
    from core.domain.directory import Account as DirectoryAccount
    from core.domain.payments import Order as PaymentOrder

Model = ApiModel  # the tenant API's models: validators built on first use (tenant_spec.py)


# --- tenant API: sessions ------------------------------------------------------------------


class LoginRequest(Model):
    code: str = Field(description="wx.login() 返回的 code")
    error_codes: ClassVar[dict] = {"code": ("code_required", "缺少登录凭证 code")}


class RefreshRequest(Model):
    refresh_token: str = Field(description="上次登录或刷新返回的 refresh_token（只能使用一次）")
    error_codes: ClassVar[dict] = {"refresh_token": ("refresh_token_required", "缺少刷新凭证 refresh_token")}


class TokenPair(Model):
    token: str = Field(description="访问令牌：请求头 Authorization: Bearer <token>")
    token_type: str = "Bearer"
    expires_in: int = Field(description="访问令牌剩余秒数")
    refresh_token: str
    refresh_expires_in: int = Field(description="刷新令牌剩余秒数")


class LoginResult(TokenPair):
    bound: bool = Field(description="是否已绑定任何账户")
    properties: list[str] = Field(description="已绑定账户所在物业的 property_id")


# --- tenant API: recharges -----------------------------------------------------------------


class RechargeRequest(Model):
    account_id: str
    amount: StrictInt = Field(description="充值金额，单位：分（整数）")
    error_codes: ClassVar[dict] = {"amount": ("amount_not_integer", "充值金额必须是以分为单位的整数")}


class PayParams(Model):
    """What wx.requestPayment needs (WeChat Pay v3 JSAPI, RSA-signed)."""

    appId: str  # noqa: N815 - WeChat's names
    timeStamp: str  # noqa: N815
    nonceStr: str  # noqa: N815
    package: str
    signType: str  # noqa: N815
    paySign: str  # noqa: N815


class RechargeCreated(Model):
    out_trade_no: str
    amount: int = Field(description="金额，单位：分")
    expires_at: str
    pay_params: PayParams


class RechargeStatus(Model):
    out_trade_no: str
    status: str = Field(description="PENDING 待支付 | PAID 已支付 | CLOSED 已关闭")
    amount: int = Field(description="金额，单位：分")
    account_id: str
    paid_at: str


def recharge_status(o: PaymentOrder) -> RechargeStatus:
    """A recharge order's state (GET /api/v1/recharges/<out_trade_no>)."""
    return RechargeStatus(out_trade_no=o.out_trade_no, status=o.status, amount=o.amount, account_id=o.account_id,
                          paid_at=o.paid_at)


# --- tenant API: reads ---------------------------------------------------------------------


class Supply(Model):
    state: Literal["on", "pending", "cut"] = Field(description="on 正常供电 | pending 即将停止供电 | cut 已停止供电")
    text: str = Field(description="供电状态（中文）")
    reason: str = Field(description="原因及恢复条件（中文）")


class Forecast(Model):
    days: int | None = Field(description="余额约可用天数；无近期用量时为 null")
    daily_cost_fen: int = Field(description="近期日均费用，单位：分")
    text: str = Field(description="如“余额约可用 12 天”")


class Account(Model):
    account_id: str
    property_id: str
    property_name: str
    room_name: str
    name: str = Field(description="账户名称")
    balance_fen: int = Field(description="余额，单位：分（可为负：已透支）")
    balance: str = Field(description="余额，单位：元")
    supply: Supply
    alarm_level: int = Field(ge=0, description="0 未告警；n 余额低于第 n 级告警金额")
    overdraft_limit_fen: int = Field(description="允许透支金额，单位：分（断电线 = -overdraft_limit_fen）")
    restore_line_fen: int = Field(description="已断电时，余额高于此金额（分）自动恢复供电")
    forecast: Forecast


class AccountList(Model):
    accounts: list[Account]


NO_FORECAST = {"days": None, "daily_cost_fen": 0, "text": "暂无用量数据，无法估算可用天数"}


def tenant_account(v) -> Account:
    """An account as its tenant sees it (a core.services.tenant_reads.TenantAccount)."""
    a = v.account
    return Account(
        account_id=a.account_id, property_id=a.property_id, property_name=v.property_name, room_name=v.room_name,
        name=a.name, balance_fen=a.balance, balance=yuan(a.balance),
        supply=Supply(state=v.supply.state, text=v.supply.text, reason=v.supply.reason),
        alarm_level=v.alarm_level, overdraft_limit_fen=a.overdraft_limit, restore_line_fen=v.restore_line,
        forecast=Forecast.model_validate(v.forecast or NO_FORECAST),
    )


class LastReading(Model):
    total: str = Field(description="表计读数（kWh 或 m³，十进制字符串）")
    read_at: str = Field(description="表计读数时间（ISO 8601）")


class Relay(Model):
    state: Literal["closed", "open", "unknown"] = Field(description="回读的开关状态：closed 合闸 | open 分闸 | unknown 未知")
    text: str
    read_at: str | None = Field(description="最近一次回读时间；从未回读为 null")


class Meter(Model):
    meter_id: str
    kind: Literal["electricity", "water"]
    name: str
    online: bool
    last_reading: LastReading | None
    relay: Relay


class MeterList(Model):
    meters: list[Meter]


def tenant_meter(m) -> Meter:
    """A meter as its tenant sees it (a core.domain.room_detail.MeterDetail)."""
    from core.domain import tenant_view  # the words: loaded with the first read, not the app

    state = m.relay_state if m.relay_state in ("closed", "open") else "unknown"
    return Meter(
        meter_id=m.meter_id, kind=tenant_view.meter_kind(m.kind), name=tenant_view.meter_name(m.kind, m.meter_id),
        online=m.online,
        last_reading=LastReading(total=m.reading_total, read_at=m.reading_at) if m.reading_at else None,
        relay=Relay(state=state, text=tenant_view.relay_text(state), read_at=m.relay_seen_at or None),
    )


class PageQuery(Model):
    cursor: str | None = Field(None, max_length=600, description="上一页返回的 next_cursor；第一页不传")
    limit: int = Field(20, ge=1, le=100, description="每页条数")


class StatementEntry(Model):
    entry_id: str
    kind: str = Field(description="recharge | refund | energy | water | fee | adjust_credit | adjust_debit | ...")
    kind_text: str
    amount_fen: int = Field(description="金额，单位：分；入账为正，扣费为负")
    amount: str = Field(description="金额，单位：元")
    balance_after_fen: int
    occurred_at: str | None = Field(description="发生时间（用量：读数时间）")
    posted_at: str = Field(description="记账时间")
    cause_text: str = Field(description="这笔账的原因（中文）")
    memo: str
    payer: str | None = Field(description="充值的付款方式（如“微信支付”）；扣费为 null")
    out_trade_no: str | None = Field(description="微信充值或退款对应的订单号（可查看收据与付款人）")


class Statement(Model):
    entries: list[StatementEntry]
    next_cursor: str | None = Field(description="下一页的游标；最后一页为 null")


def statement(page) -> Statement:
    from core.domain import tenant_view  # the words: loaded with the first read, not the app

    return Statement(entries=[StatementEntry(
        entry_id=e.entry_id, kind=str(e.kind), kind_text=tenant_view.kind_text(e.kind), amount_fen=e.amount,
        amount=yuan(e.amount), balance_after_fen=e.balance_after, occurred_at=e.occurred_at or None,
        posted_at=e.posted_at, cause_text=tenant_view.cause_text(e.kind, e.entry_id, e.cause, e.memo), memo=e.memo,
        payer=tenant_view.entry_payer(e.kind, e.entry_id, e.cause),
        out_trade_no=tenant_view.order_of_entry(e.kind, e.cause),
    ) for e in page.items], next_cursor=page.next_cursor)


class Payer(Model):
    display_name: str = Field(description="付款人：微信昵称，或“微信用户 XXXX”，或“物业柜台（现金）”")
    is_me: bool


class Order(Model):
    out_trade_no: str
    status: str = Field(description="PENDING 待支付 | PAID 已支付 | CLOSED 已关闭")
    status_text: str
    amount_fen: int
    amount: str = Field(description="金额，单位：元")
    created_at: str
    paid_at: str | None
    payer: Payer


class OrderList(Model):
    orders: list[Order]
    next_cursor: str | None = Field(description="下一页的游标；最后一页为 null")


def _order_fields(v) -> dict:
    from core.domain import tenant_view  # the words: loaded with the first read, not the app

    o = v.order
    return {"out_trade_no": o.out_trade_no, "status": o.status, "status_text": tenant_view.order_status_text(o.status),
            "amount_fen": o.amount, "amount": yuan(o.amount), "created_at": o.created_at, "paid_at": o.paid_at or None,
            "payer": Payer(display_name=v.payer_name, is_me=v.is_me)}


def orders(page) -> OrderList:
    return OrderList(orders=[Order(**_order_fields(v)) for v in page.items], next_cursor=page.next_cursor)


class Receipt(Order):
    account_id: str
    room_name: str
    property_name: str
    transaction_id: str | None = Field(description="微信支付交易单号")
    balance_after_fen: int | None = Field(description="本次充值入账后的余额（分）；未入账为 null")


def receipt(r) -> Receipt:
    return Receipt(**_order_fields(r.view), account_id=r.view.order.account_id, room_name=r.account.room_name,
                   property_name=r.account.property_name, transaction_id=r.view.order.transaction_id or None,
                   balance_after_fen=r.balance_after)


# --- the console ---------------------------------------------------------------------------


def console_account(a: DirectoryAccount) -> dict:
    return {"account_id": a.account_id, "name": a.name, "balance_fen": a.balance, "supply": a.cut_state}


def room_with_balances(row: dict) -> dict:
    """A room of the console's room list: the room, its accounts and their balances summed
    (a row of core.services.directory.rooms_with_balances)."""
    room = row["room"]
    return {"room_id": room.room_id, "name": room.name, "area_m2": room.area_m2, "balance_fen": row["balance"],
            "balance": yuan(row["balance"]), "accounts": [console_account(a) for a in row["accounts"]]}
