"""Who among a property's staff hears of each admin event (通知接收人, docs/console.md
"Notification recipients"). Pure rules: the event types an admin can be told of, the
channels, and the check of a recipient address.

A recipient is (channel, to): `email` + an e-mail address, `sms` + a mainland mobile
number kept as "+86" and 11 digits, `template` + an official-account openid (the admin's
WeChat following the property's official account).
"""

from __future__ import annotations

import re

from core.domain.errors import ValidationError

EMAIL, SMS, TEMPLATE = "email", "sms", "template"
CHANNELS = (TEMPLATE, SMS, EMAIL)
CHANNEL_NAMES = {TEMPLATE: "公众号模板消息", SMS: "短信", EMAIL: "邮件"}

# the admin events of the catalog (core/domain/notifications.py), in the page's order
EVENT_TYPES = ("meter_offline", "bridge_offline", "command_failing", "anomaly_review", "reconcile_mismatch",
               "refund_request")
EVENT_NAMES = {"meter_offline": "表计离线", "bridge_offline": "网关离线", "command_failing": "指令多次失败",
               "anomaly_review": "读数异常待审核", "reconcile_mismatch": "对账不一致", "refund_request": "退款申请待审批"}
MAX_PER_TYPE = 20

_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_OPENID = re.compile(r"[A-Za-z0-9_-]{6,64}")


def check_event_type(event_type: object) -> str:
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise ValidationError("未知的通知事件类型", code="event_type_invalid", field="event_type")
    return event_type


def check_recipient(channel: object, to: object) -> tuple[str, str]:
    """(channel, to) normalised, or a ValidationError with a Chinese message."""
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise ValidationError("通知渠道必须是公众号模板消息、短信或邮件", code="channel_invalid", field="channel")
    if not isinstance(to, str) or not to.strip():
        raise ValidationError("请填写接收人", code="to_required", field="to")
    to = to.strip()
    if channel == EMAIL:
        if len(to) > 254 or not _EMAIL.fullmatch(to) or ".." in to:
            raise ValidationError("邮箱地址格式不正确", code="email_invalid", field="to")
        local, _, host = to.partition("@")
        return channel, f"{local}@{host.lower()}"
    if channel == SMS:
        digits = re.sub(r"[\s-]", "", to)
        digits = digits.removeprefix("+86").removeprefix("0086") if digits.startswith(("+86", "0086")) else digits
        if not _MOBILE.fullmatch(digits):
            raise ValidationError("手机号格式不正确，请填写 11 位中国大陆手机号", code="phone_invalid", field="to")
        return channel, "+86" + digits
    if not _OPENID.fullmatch(to):
        raise ValidationError("公众号 openid 格式不正确（6–64 位字母、数字、_ 或 -）", code="openid_invalid", field="to")
    return channel, to


def with_added(current: list[tuple[str, str]], recipient: tuple[str, str]) -> list[tuple[str, str]]:
    """current plus recipient (already there: unchanged); at most MAX_PER_TYPE."""
    if recipient in current:
        return list(current)
    if len(current) >= MAX_PER_TYPE:
        raise ValidationError(f"每类事件最多 {MAX_PER_TYPE} 个接收人", code="too_many_recipients", field="to")
    return [*current, recipient]


def check_list(items: object) -> list[tuple[str, str]]:
    """A whole list from the API: [{"channel", "to"}...], checked, duplicates dropped."""
    if not isinstance(items, list):
        raise ValidationError("recipients 必须是数组", code="recipients_invalid", field="recipients")
    out: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, dict) or set(item) - {"channel", "to"}:
            raise ValidationError("每个接收人须为 {channel, to}", code="recipients_invalid", field="recipients")
        out = with_added(out, check_recipient(item.get("channel"), item.get("to")))
    return out
