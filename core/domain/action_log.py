"""The action log (审计日志): who did what in the console, when, from where, with the
state before and after (docs/console.md). Not the ledger audit (core/services/audit.py),
which checks balances.

A record belongs to a property's partition, or to "company:<id>" for what concerns no
property (logins, logouts, password and TOTP changes). Records are never changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

# Labels an admin reads; actions not listed show their own name. Other areas add theirs.
ACTION_NAMES: dict[str, str] = {
    "notify_recipients": "修改通知接收人",
    "login": "登录",
    "login_failed": "登录失败",
    "login_locked": "登录被锁定",
    "logout": "退出登录",
    "password_changed": "修改密码",
    "totp_enabled": "开启两步验证",
    "totp_disabled": "关闭两步验证",
    "admin_created": "创建管理员",
    "admin_granted": "授权物业",
    "property_added": "公司添加物业",
    # the owner's user page and property settings (miniprogram_api/console_admin.py)
    "admin_updated": "修改管理员",
    "admin_disabled": "停用管理员",
    "admin_enabled": "启用管理员",
    "password_reset": "重置管理员密码",
    "protection_settings": "修改断电保护设置",
    # sites and bridges (core/services/site_status.py)
    "site_registered": "注册站点网关",
    "site_secret_rotated": "开始轮换网关密钥",
    "site_secret_finished": "结束网关密钥轮换",
    # room actions (core/services/room_actions.py)
    "account_opened": "开户",
    "meter_added": "添加表计",
    "binding_code_issued": "发放绑定码",
    # tenants' own bindings (core/services/bindings.py; actor: the WeChat user, role "tenant")
    "tenant_bound": "租户绑定账户",
    "tenant_unbound": "租户解除绑定",
    "tariff_assigned": "设置电价方案",
    "counter_recharge": "柜台充值",
    "refund_wechat": "微信退款",
    "refund_cash": "现金退款",
    "account_settings": "修改账户设置",
    "meter_keep_supply": "表计保电",
    "manual_trip": "手动分闸",
    "manual_close": "手动合闸",
    "meter_replaced": "换表",
    "account_closed": "销户",
    "account_closing": "销户（退款处理中）",
    # tenant refund requests (core/services/refund_requests.py)
    "refund_request_approve": "同意退款申请",
    "refund_request_reject": "驳回退款申请",
    # common-area apportionment (core/services/apportion.py)
    "apportion_group_created": "新建公摊组",
    "apportion_group_updated": "修改公摊组",
    "apportion_approved": "审批公摊入账",
    # deposits (core/services/deposits.py)
    "deposit_take": "收取押金",
    "deposit_refund": "退还押金",
    "deposit_apply": "押金抵扣",
    # move-out and transfer (core/services/move_out.py)
    "settlement_started": "开始退租结算",
    "settlement_done": "退租结算完成",
    "settlement_refunding": "退租结算（待结清）",
    "read_now": "立即抄表",
    # batch operations (core/services/batch.py; the items are the task's own records)
    "batch_created": "新建批量任务",
    "batch_confirmed": "确认执行批量任务",
    "batch_retry": "重试批量任务失败项",
    "batch_cancelled": "取消批量任务",
    # finance (core/services/finance.py)
    "reconcile_review": "对账差异标记已核查",
}

MAX_VALUE_BYTES = 8_000  # before / after, each, as JSON


def company_partition(company_id: str) -> str:
    return f"company:{company_id}"


def action_name(action: str) -> str:
    return ACTION_NAMES.get(action, action)


@dataclass(frozen=True)
class ActionRecord:
    at: datetime
    actor_id: str  # the admin's login ("" when a login names nobody we know)
    actor_name: str
    role: str
    partition: str  # a property id, or company_partition(company_id)
    action: str
    target: str = ""  # what was acted on: an account, a room, a meter, a login name
    before: dict | None = None
    after: dict | None = None
    ip: str = ""
    record_id: str = ""
    property_id: str = ""  # the property (empty for a company record)
    extra: dict = field(default_factory=dict)

    @property
    def action_name(self) -> str:
        return action_name(self.action)


def check_value(value: dict | None, what: str) -> dict | None:
    """before / after must be JSON objects of bounded size (they are shown and exported)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict")
    if len(json.dumps(value, ensure_ascii=False, default=str).encode()) > MAX_VALUE_BYTES:
        raise ValueError(f"{what} is larger than {MAX_VALUE_BYTES} bytes")
    return value
