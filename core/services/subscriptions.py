"""A tenant's consents to mini-program subscribe messages (docs/notifications.md "Channels").

Mini-program subscribe messages are one-time: each template a tenant accepts in
wx.requestSubscribeMessage allows one message. The mini-program asks at the moments the
tenant acts (`PROMPTS`: after a payment succeeds, on a low balance), with the WeChat
template ids `status()` gives, and posts what WeChat answered per catalog key; `record`
adds a grant per "accept" (core/store/consents.py). The sender spends one per message.
The official account's template messages need no per-message consent.
"""

from __future__ import annotations

from core.domain.errors import ValidationError
from core.domain.notifications import KINDS
from core.integrations.channels import template_ids
from core.settings import get_settings
from core.store import consents as store

# when the mini-program asks (WeChat takes at most 3 templates per prompt), and for which keys
PROMPTS: dict[str, tuple[str, ...]] = {
    "after_payment": ("payment_received", "supply_restored", "low_balance"),
    "low_balance": ("low_balance", "cut_imminent", "supply_cut"),
}
RESULTS = ("accept", "reject", "ban", "filter")  # what wx.requestSubscribeMessage answers per template


def templates() -> dict[str, str]:
    """{catalog key: WeChat template id} of the subscribe messages this deployment has."""
    return {k: v for k, v in template_ids(get_settings().wechat_subscribe_templates).items() if k in KINDS}


def status(openid: str) -> dict:
    """The templates to ask for (per moment) and the grants the user has left."""
    ids = templates()
    return {
        "templates": [{"template_key": k, "template_id": v, "title": KINDS[k].title} for k, v in ids.items()],
        "prompts": {moment: [ids[k] for k in keys if k in ids][:3] for moment, keys in PROMPTS.items()},
        "counts": {k: n for k, n in store.counts(openid).items() if k in ids},
    }


def record(openid: str, results: object) -> dict:
    """Record what the user answered ({template_key: accept|reject|ban|filter}): one grant per
    "accept". Everything is checked before anything is written. Returns `status(openid)`."""
    ids = templates()
    if not isinstance(results, dict) or not results:
        raise ValidationError("请提供订阅结果", code="results_required", field="results")
    for key, answer in results.items():
        if key not in ids:
            raise ValidationError(f"未知的订阅消息模板：{str(key)[:64]}", code="template_unknown", field="results")
        if answer not in RESULTS:
            raise ValidationError("订阅结果无效", code="invalid_request", field=f"results.{key}")
    for key, answer in results.items():
        if answer == "accept":
            store.grant(openid, key)
    return status(openid)
