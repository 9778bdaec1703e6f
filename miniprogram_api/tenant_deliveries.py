"""The tenant API's delivery log (/api/v1, docs/tenant-api.md "Notifications sent"): the
messages sent to the calling WeChat user about one of their accounts, newest first, with
their channel and status (reads in core/services/notify_log.py). Another tenant's account
is a 404 exactly like a missing one."""

from __future__ import annotations

from flask import Blueprint, g, request
from pydantic import Field
from spectree import Response

from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_deliveries", __name__, url_prefix="/api/v1")

TAGS = ["通知"]


class DeliveriesQuery(ApiModel):
    limit: int = Field(20, ge=1, le=100, description="条数，默认 20")


class TenantDelivery(ApiModel):
    delivery_id: str
    kind: str = Field(description="通知类型，如 low_balance、payment_received")
    kind_name: str = Field(description="通知标题（中文）")
    channel: str = Field(description="subscribe（小程序订阅消息）、template（公众号模板消息）")
    channel_name: str
    recipient: str = Field(description="接收人（已脱敏）")
    status: str = Field(description="sent、retrying、failed、no_consent、quiet_deferred …")
    status_name: str = Field(description="状态（中文）：已发送、重试中、发送失败、未订阅、免打扰延后…")
    created_at: str = Field(description="首次发送时间（UTC）")
    updated_at: str | None = None


class TenantDeliveries(ApiModel):
    deliveries: list[TenantDelivery]


def _log():
    from core.services import notify_log  # loaded with the first request (docs/cold-start.md)

    return notify_log


@bp.get("/accounts/<account_id>/deliveries")
@tenant_required
@spec.validate(query=DeliveriesQuery, resp=Response(HTTP_200=TenantDeliveries, HTTP_404=ErrorBody), tags=TAGS)
def deliveries(account_id: str):
    """The messages sent to you about this account (newest first) and whether they arrived."""
    q: DeliveriesQuery = request.context.query
    rows = _log().tenant_log(g.openid, account_id, q.limit)
    return TenantDeliveries.model_validate({"deliveries": [
        {k: v for k, v in r.to_json().items() if k in TenantDelivery.model_fields} for r in rows]})
