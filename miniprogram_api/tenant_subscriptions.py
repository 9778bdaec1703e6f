"""The tenant API's subscribe-message consents (/api/v1/subscriptions; docs/tenant-api.md
"Subscribe-message consents", docs/notifications.md "Channels").

`GET` gives the WeChat template ids the mini-program asks for (per moment: after a payment,
on a low balance) and the one-time grants left; `POST` records what
wx.requestSubscribeMessage answered, mapped back to catalog keys. Rules and store:
core/services/subscriptions.py, core/store/consents.py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, g, request
from pydantic import ConfigDict, Field, StringConstraints
from spectree import Response as SpecResponse

from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, spec

bp = Blueprint("tenant_subscriptions", __name__, url_prefix="/api/v1")

TemplateKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SubscriptionResults(ApiModel):
    """wx.requestSubscribeMessage 的结果，按模板键（template_key）给出。"""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    results: dict[TemplateKey, Literal["accept", "reject", "ban", "filter"]] = Field(
        min_length=1, max_length=20, description="模板键 -> accept（同意）| reject（拒绝）| ban（被封禁）| filter（被过滤）")


class SubscriptionTemplate(ApiModel):
    template_key: str = Field(description="消息类型，例如 low_balance")
    template_id: str = Field(description="微信订阅消息模板 ID（传给 wx.requestSubscribeMessage）")
    title: str


class Subscriptions(ApiModel):
    """订阅消息：可订阅的模板、各时机应请求的模板，以及剩余的一次性授权次数。"""

    templates: list[SubscriptionTemplate]
    prompts: dict[str, list[str]] = Field(
        description="时机 -> 模板 ID（最多 3 个）：after_payment 支付成功后，low_balance 余额偏低时")
    counts: dict[str, int] = Field(description="模板键 -> 剩余可发送次数（每次同意加 1，每发一条减 1）")


@bp.get("/subscriptions")
@tenant_required
@spec.validate(resp=SpecResponse(HTTP_200=Subscriptions), tags=["通知"])
def subscriptions():
    """The subscribe-message templates to ask for and my grants left."""
    from core.services import subscriptions as service

    return service.status(g.openid)


@bp.post("/subscriptions")
@tenant_required
@spec.validate(json=SubscriptionResults, resp=SpecResponse(HTTP_200=Subscriptions), tags=["通知"])
def record_subscriptions():
    """Record what wx.requestSubscribeMessage answered (one grant per "accept")."""
    from core.services import subscriptions as service

    return service.record(g.openid, request.context.json.results)
