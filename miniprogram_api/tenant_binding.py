"""The tenant API's official-account login and bindings (/api/v1; docs/tenant-api.md "Login"
and "Bindings", docs/tenant-auth.md).

- POST /login/oauth: a web authorization code (the official account's H5 pages) -> tokens,
  as POST /login answers;
- POST /bindings: redeem a binding code (or the QR's text) -> membership of the account;
- POST /bindings/phone-code: a one-time code by SMS to the room's tenant's phone (the same
  answer whether or not the phone matched the room);
- POST /bindings/phone: the code typed back -> membership of the account, as POST /bindings;
- GET /accounts/<account_id>/members: the account's WeChat users (roommates);
- DELETE /bindings/<account_id>: leave an account.

Also, for every route of the app: the client's address for the rate limits (taken from
X-Forwarded-For as API Gateway passes it, core/domain/limits.client_ip) and the 429
answer with Retry-After when a limit is reached (core/services/limits.py).
"""

from __future__ import annotations

from typing import ClassVar

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import Field
from spectree import Response

from core.domain.limits import RateLimited
from miniprogram_api import serializers
from miniprogram_api.services import tenant_auth
from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_binding", __name__, url_prefix="/api/v1")


@bp.before_app_request
def remember_client_ip() -> None:
    from core.services import limits

    limits.remember_client_ip(request.headers.get("X-Forwarded-For"), request.remote_addr)


@bp.app_errorhandler(RateLimited)
def rate_limited(e: RateLimited):
    response = jsonify({"error": {"code": e.code, "message": e.message}})
    response.status_code = e.status
    response.headers["Retry-After"] = str(e.retry_after)
    return response


# --- models ----------------------------------------------------------------------------------


class OAuthLoginRequest(ApiModel):
    code: str = Field(description="公众号网页授权回调 redirect_uri 上的 code")
    state: str | None = Field(None, description="授权时页面自己传入的 state（原样带回，页面自行核对）")
    error_codes: ClassVar[dict] = {"code": ("code_required", "缺少登录凭证 code"),
                                   "state": ("state_invalid", "state 参数无效")}


class BindRequest(ApiModel):
    code: str = Field(description="绑定码（如 ABCD-EFGH，大小写和短横线均可）或绑定二维码的内容 feikong://bind?code=…")
    property_id: str | None = Field(None, description="可选：当前页面所属物业；其他物业的绑定码将被拒绝")
    error_codes: ClassVar[dict] = {"code": ("binding_code_invalid", "绑定码格式无效（8 位字母或数字）"),
                                   "property_id": ("property_id_invalid", "property_id 无效")}


class PhoneCodeRequest(ApiModel):
    property_id: str = Field(description="物业编号（页面或小程序所属物业）")
    building_id: str | None = Field(None, description="可选：楼栋编号；不填时在整个物业中按房间号查找")
    room: str = Field(description="房间编号或租户熟知的房间名称，如 B-201")
    phone: str = Field(description="租户在物业登记的手机号（11 位中国大陆手机号，可带 +86）")
    error_codes: ClassVar[dict] = {"property_id": ("property_id_invalid", "property_id 无效"),
                                   "building_id": ("building_id_invalid", "building_id 无效"),
                                   "room": ("room_invalid", "请填写房间号（如 B-201）"),
                                   "phone": ("phone_invalid", "手机号格式无效，请填写 11 位中国大陆手机号")}


class PhoneCodeSent(ApiModel):
    message: str = Field(description="若手机号与房间登记信息一致，验证码已发送（是否一致都是这句）")
    resend_after: int = Field(description="多少秒后可以重新获取（60）")
    expires_in: int = Field(description="验证码有效秒数（300）")


class PhoneBindRequest(PhoneCodeRequest):
    code: str = Field(description="短信中的 6 位数字验证码")
    error_codes: ClassVar[dict] = {**PhoneCodeRequest.error_codes,
                                   "code": ("phone_code_format", "请输入短信中的 6 位数字验证码")}


class Binding(ApiModel):
    account_id: str
    property_id: str
    property_name: str = Field(description="物业名称")
    room_name: str = Field(description="房间名称")
    name: str = Field(description="账户名称")


class Member(ApiModel):
    member_id: str = Field(description="成员标识（按账户区分，不是 openid）")
    display_name: str = Field(description="微信昵称；未知时为「微信用户 XXXX」")
    is_me: bool
    bound_at: str = Field(description="绑定时间（UTC，ISO 8601）")


class MemberList(ApiModel):
    members: list[Member]


# --- routes ----------------------------------------------------------------------------------


@bp.post("/login/oauth")
@spec.validate(json=OAuthLoginRequest,
               resp=Response(HTTP_200=serializers.LoginResult, HTTP_401=ErrorBody, HTTP_429=ErrorBody,
                             HTTP_503=ErrorBody), tags=["登录"])
def login_oauth():
    """Log in from the official account's H5 pages with a web authorization code."""
    body: OAuthLoginRequest = request.context.json
    return serializers.LoginResult.model_validate(tenant_auth().login_oauth(body.code, body.state))


@bp.post("/bindings")
@tenant_required
@spec.validate(json=BindRequest, resp=Response(HTTP_201=Binding, HTTP_404=ErrorBody), tags=["绑定"])
def bind():
    """Bind the WeChat user to an account with a binding code (or the QR's text) issued in the console."""
    from core.services import bindings

    body: BindRequest = request.context.json
    if body.property_id is not None:
        from core.domain.naming import require_id

        require_id(body.property_id, "property_id")
    return Binding.model_validate(bindings.redeem_binding_code(body.code, g.openid, property_id=body.property_id)), 201


def phone_binding():
    """The phone-binding service of this app (a test may place its own, with its clock, in
    app.extensions["feikong.phone_binding"] before the first request)."""
    found = current_app.extensions.get("feikong.phone_binding")
    if found is None:
        from core.services.phone_binding import PhoneBinding

        found = current_app.extensions.setdefault("feikong.phone_binding", PhoneBinding())
    return found


@bp.post("/bindings/phone-code")
@tenant_required
@spec.validate(json=PhoneCodeRequest, resp=Response(HTTP_200=PhoneCodeSent, HTTP_429=ErrorBody), tags=["绑定"])
def phone_code():
    """Ask for a one-time code by SMS to bind by phone + room: sent only when the phone is the
    room's tenant's, and the answer is the same either way (nothing to enumerate)."""
    body: PhoneCodeRequest = request.context.json
    return PhoneCodeSent.model_validate(
        phone_binding().request_code(g.openid, body.property_id, body.building_id, body.room, body.phone))


@bp.post("/bindings/phone")
@tenant_required
@spec.validate(json=PhoneBindRequest, resp=Response(HTTP_201=Binding), tags=["绑定"])
def bind_by_phone():
    """Bind to the room's account with the code from the SMS (at most 5 tries, 5 minutes, once)."""
    body: PhoneBindRequest = request.context.json
    answer = phone_binding().bind(g.openid, body.property_id, body.building_id, body.room, body.phone, body.code)
    return Binding.model_validate(answer), 201


@bp.get("/accounts/<account_id>/members")
@tenant_required
@spec.validate(resp=Response(HTTP_200=MemberList, HTTP_404=ErrorBody), tags=["绑定"])
def members(account_id: str):
    """The WeChat users bound to one of my accounts (roommates), me among them."""
    from core.services import bindings

    return MemberList.model_validate({"members": bindings.members(g.openid, account_id)})


@bp.delete("/bindings/<account_id>")
@tenant_required
@spec.validate(resp=Response(HTTP_204=None, HTTP_404=ErrorBody), tags=["绑定"])
def unbind(account_id: str):
    """Unbind me from an account (roommates stay bound)."""
    from core.services import bindings

    bindings.unbind(g.openid, account_id)
    return "", 204
