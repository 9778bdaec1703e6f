"""The tenant API's money chain and self-service (/api/v1; docs/tenant-api.md, "Money
chain, refunds, preferences, notifications"): a recharge's progress (JSON and
server-sent events), recharge options, refund requests, alarm preferences, notifications.

Views are thin: ids go through core.services.tenancy (another tenant's id is a 404 like a
missing one), rules live in core/domain (progress, refund_requests, alarm_prefs,
tenant_feed), the reads and writes in the services named below.
"""

from __future__ import annotations

import json
import time
from typing import ClassVar, Literal

from flask import Blueprint, Response, current_app, g, request, stream_with_context
from pydantic import ConfigDict, Field, StrictInt, StrictStr
from spectree import Response as SpecResponse

from core.domain.money import yuan
from miniprogram_api.services import payments
from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_money", __name__, url_prefix="/api/v1")

PROGRESS_CLOCK_KEY = "feikong.progress_clock"  # app.extensions: (clock, sleep) of the stream (tests)


# --- models -------------------------------------------------------------------------------


class ProgressStep(ApiModel):
    key: Literal["paid", "credited", "command_sent", "relay_closed"]
    text: str
    done: bool
    at: str | None = Field(None, description="完成时间（UTC ISO 8601）")


class RechargeProgress(ApiModel):
    """充值进度：支付 → 入账 → 合闸指令 → 电表合闸（读回确认）。"""

    state: Literal["waiting_payment", "paid", "credited", "command_sent", "restored", "not_needed",
                   "needs_local_confirm", "site_offline", "failed"]
    message: str = Field(description="给租户看的说明（中文）")
    steps: list[ProgressStep]
    balance_fen: int | None = Field(None, description="当前余额（分），支付完成后才有")
    balance: str | None = None
    final: bool = Field(description="是否已是最终状态（此后不再变化，停止轮询）")
    shortfall_fen: int | None = Field(None, description="余额仍低于复电线时，还需充值的金额（分）")


class RechargeOptionsQuery(ApiModel):
    account_id: str


class Preset(ApiModel):
    amount_fen: int
    amount: str


class RechargeOptions(ApiModel):
    presets: list[Preset]
    min_fen: int
    max_fen: int
    min: str
    max: str


class RefundRequestCreate(ApiModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(description="退款金额，单位：分（不超过可用余额）")
    reason: StrictStr = Field(description="退款原因（不超过 200 字）")
    error_codes: ClassVar[dict] = {"amount": ("amount_not_integer", "退款金额必须是以分为单位的整数"),
                                   "reason": ("reason_required", "请填写退款原因")}


class RefundRequestCreated(ApiModel):
    request_id: str
    status: Literal["pending"]
    amount_fen: int
    amount: str


class RefundRequestView(ApiModel):
    request_id: str
    status: Literal["pending", "approving", "approved", "rejected", "failed"]
    status_text: str
    amount_fen: int
    amount: str
    reason: str
    created_at: str
    decided_at: str | None = None
    reject_reason: str | None = None
    refunded_fen: int


class RefundRequestList(ApiModel):
    requests: list[RefundRequestView]


class QuietHours(ApiModel):
    model_config = ConfigDict(extra="forbid")
    start: StrictStr = Field(description="HH:MM")
    end: StrictStr = Field(description="HH:MM（早于开始时间表示跨午夜，如 22:00–07:00）")


class AlarmPreferences(ApiModel):
    """个人余额提醒：金额（分，可为空）、通知渠道、免打扰时段（可跨午夜）。"""

    model_config = ConfigDict(extra="forbid")
    low_balance_fen: StrictInt | None = Field(description="余额低于此金额（分）时提醒；null 表示只按物业设置提醒")
    channels: list[StrictStr] = Field(description="subscribe（小程序订阅消息）、template（公众号模板消息）、sms（短信）")
    quiet_hours: QuietHours | None = Field(description="免打扰时段，null 表示不设置")


class NotificationsQuery(ApiModel):
    cursor: str | None = None
    limit: int = Field(20, ge=1, le=50)


class NotificationItem(ApiModel):
    id: str
    kind: str = Field(description="low_balance | payment_credited | cut | restored | refund_approved | refund_rejected")
    title: str
    text: str
    at: str


class NotificationPage(ApiModel):
    notifications: list[NotificationItem]
    next_cursor: str | None = None


# --- a recharge's progress -----------------------------------------------------------------


def _clock():
    """(clock or None, sleep) of the progress reads: a test may put its own in app.extensions."""
    return current_app.extensions.get(PROGRESS_CLOCK_KEY) or (None, time.sleep)


def _progress_body(p) -> dict:
    return {"state": p.state, "message": p.message,
            "steps": [{"key": s.key, "text": s.text, "done": s.done, "at": s.at} for s in p.steps],
            "balance_fen": p.balance_fen, "balance": yuan(p.balance_fen) if p.balance_fen is not None else None,
            "final": p.final, "shortfall_fen": p.shortfall_fen}


@bp.get("/recharges/<out_trade_no>/progress")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_200=RechargeProgress, HTTP_404=ErrorBody), tags=["充值"])
def recharge_progress(out_trade_no: str):
    """Where my money is: paid → credited → command sent → relay closed (read back)."""
    from core.services import recharge_progress as service

    clock, _ = _clock()
    return _progress_body(service.progress(g.openid, out_trade_no, **({"clock": clock} if clock else {})))


@bp.get("/recharges/<out_trade_no>/progress/stream")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_200=None, HTTP_404=ErrorBody), skip_validation=True, tags=["充值"])
def recharge_progress_stream(out_trade_no: str):
    """The progress as server-sent events (text/event-stream): one `progress` event with the
    JSON body of /progress whenever it changes, until a final state or about 25 s. API
    Gateway buffers responses: behind it, poll /progress instead."""
    from core.services import recharge_progress as service

    order = service.order_of(g.openid, out_trade_no)  # 404 before the stream starts
    clock, sleep = _clock()
    kwargs = {"clock": clock} if clock else {}

    def events():
        yield "retry: 3000\n\n"
        for p in service.stream(order, sleep=sleep, **kwargs):
            yield f"event: progress\ndata: {json.dumps(_progress_body(p), ensure_ascii=False)}\n\n"
        yield "event: end\ndata: {}\n\n"

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --- recharge options ----------------------------------------------------------------------


@bp.get("/recharge-options")
@tenant_required
@spec.validate(query=RechargeOptionsQuery, resp=SpecResponse(HTTP_200=RechargeOptions, HTTP_404=ErrorBody),
               tags=["充值"])
def recharge_options():
    """Preset amounts and the limits of one recharge, for an account of mine."""
    from core.domain.recharge_options import presets
    from core.services import tenancy

    tenancy.require_member(g.openid, request.context.query.account_id)
    limits = payments().limits
    return {"presets": [{"amount_fen": a, "amount": yuan(a)} for a in presets(limits)],
            "min_fen": limits.min_fen, "max_fen": limits.max_fen, "min": yuan(limits.min_fen),
            "max": yuan(limits.max_fen)}


# --- refund requests -----------------------------------------------------------------------


def _request_view(r) -> dict:
    return {"request_id": r.request_id, "status": r.status, "status_text": r.status_text, "amount_fen": r.amount,
            "amount": yuan(r.amount), "reason": r.reason, "created_at": r.created_at,
            "decided_at": r.decided_at or None if r.status not in ("pending", "approving") else None,
            "reject_reason": r.reject_reason or None, "refunded_fen": r.refunded}


@bp.post("/accounts/<account_id>/refund-requests")
@tenant_required
@spec.validate(json=RefundRequestCreate,
               resp=SpecResponse(HTTP_201=RefundRequestCreated, HTTP_404=ErrorBody, HTTP_409=ErrorBody),
               tags=["退款"])
def create_refund_request(account_id: str):
    """Ask for part of the balance back (the property approves; refunded to WeChat)."""
    from core.services import refund_requests

    body = request.context.json
    r = refund_requests.create(g.openid, account_id, body.amount, body.reason)
    return {"request_id": r.request_id, "status": r.status, "amount_fen": r.amount, "amount": yuan(r.amount)}, 201


@bp.get("/accounts/<account_id>/refund-requests")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_200=RefundRequestList, HTTP_404=ErrorBody), tags=["退款"])
def refund_requests_of_account(account_id: str):
    """The account's refund requests, newest first, with their outcome."""
    from core.services import refund_requests

    return {"requests": [_request_view(r) for r in refund_requests.of_account(g.openid, account_id)]}


# --- alarm preferences ---------------------------------------------------------------------


@bp.get("/accounts/<account_id>/alarm-preferences")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_200=AlarmPreferences, HTTP_404=ErrorBody), tags=["提醒"])
def alarm_preferences(account_id: str):
    """My reminder settings for the account (defaults until saved)."""
    from core.services import tenant_notices

    return tenant_notices.preferences(g.openid, account_id).as_json()


@bp.put("/accounts/<account_id>/alarm-preferences")
@tenant_required
@spec.validate(json=AlarmPreferences, resp=SpecResponse(HTTP_200=AlarmPreferences, HTTP_404=ErrorBody),
               tags=["提醒"])
def save_alarm_preferences(account_id: str):
    """Replace my reminder settings for the account (every field; validated, then read back)."""
    from core.services import tenant_notices

    return tenant_notices.save_preferences(g.openid, account_id, request.context.json.model_dump()).as_json()


# --- notifications -------------------------------------------------------------------------


@bp.get("/accounts/<account_id>/notifications")
@tenant_required
@spec.validate(query=NotificationsQuery, resp=SpecResponse(HTTP_200=NotificationPage, HTTP_404=ErrorBody),
               tags=["通知"])
def notifications(account_id: str):
    """Notifications the account has had (low balance, cut, restored, payment credited,
    refund decisions), newest first; `next_cursor` pages on."""
    from core.services import tenant_notices

    q = request.context.query
    items, nxt = tenant_notices.notifications(g.openid, account_id, q.cursor, q.limit)
    return {"notifications": [{"id": n.id, "kind": n.kind, "title": n.title, "text": n.text, "at": n.at}
                              for n in items], "next_cursor": nxt}
