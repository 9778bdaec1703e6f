"""Binding by phone + room with a one-time SMS code (docs/tenant-auth.md "Bindings";
docs/tenant-api.md "Bindings") over HTTP: the Flask app on a free port, mini-program logins
through the WeChat API emulator, the code sent through the channel port to the SMS emulator
(Tencent Cloud SendSms, signature checked there) and read back from the emulator's HTTP API,
never from our store; the emulated DynamoDB. Time moves by the clock injected into the
service (a whole hour to start with), never by sleeping.

Hand-worked: a code lives 5 minutes (4:59 good, 5:00 expired), 60 s between two codes to one
number (Retry-After 60 at once, 1 at 0:59), 5 attempts (4, 3, 2, 1 left, then burned);
per number 5 requests an hour: the 6th, 5 minutes into the hour, waits 3300 s."""

from __future__ import annotations

import os
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from core import aws
from core.services import action_log, directory, tenancy
from core.services.phone_binding import PhoneBinding
from core.settings import resource_name
from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.channelstack import ChannelStack
from infra.local.stack import forget, seed_secrets
from miniprogram_api.app import create_app
from testkit.builders import Clock, uid

APPID, APP_SECRET = "wx00000000000otp001", "app-secret-for-otp-tests"
JWT_SECRET = "jwt-secret-for-phone-binding-tests-0123456789"
CLOUDFRONT = "130.176.0.10"
SENT = "若手机号与房间登记信息一致，验证码已发送"
T = 10


def oid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def a_phone() -> str:
    return "139" + f"{random.randrange(10 ** 8):08d}"


def an_ip() -> str:
    return f"198.18.{random.randint(0, 255)}.{random.randint(1, 254)}"


class Rig:
    def __init__(self) -> None:
        self.wechat = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=APP_SECRET)).start()
        self._saved = {k: os.environ.get(k) for k in ("FEIKONG_WECHAT_API_BASE",)}
        os.environ["FEIKONG_WECHAT_API_BASE"] = self.wechat.url
        self.channels = ChannelStack(self.wechat).start()
        self.channels.apply_env("tencent")
        seed_secrets({"wechat": {"appid": APPID, "secret": APP_SECRET}, "jwt": JWT_SECRET})
        self.web = BackgroundServer(create_app()).start()
        self.base = self.web.url
        self.clock = Clock(datetime.now(UTC))

    def stop(self) -> None:
        self.web.stop()
        self.channels.stop()
        self.wechat.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        forget()

    def fresh_clock(self) -> Clock:
        """A new service on a clock at the next whole hour (windows of the limits start with it)."""
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        self.clock = Clock(start)
        self.web.app.extensions["feikong.phone_binding"] = PhoneBinding(clock=self.clock)
        return self.clock

    def login(self, openid: str) -> dict:
        r = requests.post(f"{self.base}/api/v1/login", json={"code": self.wechat.issue_code(openid)}, timeout=T)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def ask(self, auth: dict, ip: str, **body) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/bindings/phone-code", json=body,
                             headers={**auth, "X-Forwarded-For": f"{ip}, {CLOUDFRONT}"}, timeout=T)

    def bind(self, auth: dict, ip: str, **body) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/bindings/phone", json=body,
                             headers={**auth, "X-Forwarded-For": f"{ip}, {CLOUDFRONT}"}, timeout=T)

    def sms_to(self, phone: str) -> list[dict]:
        """What the SMS emulator received for this number, over its HTTP API."""
        r = requests.get(f"{self.channels.sms.url}/emulator/messages.json", timeout=T)
        assert r.status_code == 200
        return [m for m in r.json()["messages"] if m["phone"] == "+86" + phone]

    def code_for(self, phone: str) -> str:
        msgs = self.sms_to(phone)
        assert msgs, f"no SMS to {phone}"
        m = msgs[-1]
        assert m["code"] == "Ok" and m["provider"] == "tencent" and m["sign"] == "费控物业"
        assert m["template"] == self.channels.tencent_ids["bind_code"]
        code, minutes = m["params"]
        assert re.fullmatch(r"\d{6}", code) and minutes == "5"
        return code


@pytest.fixture(scope="module")
def rig(aws):
    r = Rig()
    yield r
    r.stop()


class Place:
    """A property with building B, room B201 named "B-201", its tenant (a phone of their own)
    and the room's open account."""

    def __init__(self, room_name: str = "B-201") -> None:
        self.property_id = uid("p")
        directory.create_property(self.property_id, "阳光公寓")
        directory.add_building(self.property_id, "B", "B 栋")
        directory.add_floor(self.property_id, "B", "B2F", "2 层", 2)
        self.room_id = "B201"
        directory.add_room(self.property_id, "B", "B2F", self.room_id, room_name, "30")
        self.phone = a_phone()
        self.tenant_id = uid("t")
        directory.register_tenant(self.property_id, self.tenant_id, "王租户", self.phone)
        self.account_id = uid("a")
        directory.open_account(self.property_id, self.account_id, "B", self.room_id, self.tenant_id, "B201 王租户")

    def body(self, **kw) -> dict:
        return {"property_id": self.property_id, "room": "B-201", "phone": self.phone, **kw}


def refused(r: requests.Response, status: int, code: str, message: str | None = None) -> bool:
    body = r.json()
    ok = r.status_code == status and body["error"]["code"] == code
    return ok and (message is None or body["error"]["message"] == message)


def otp_items() -> list[dict]:
    return aws.client("dynamodb").scan(TableName=resource_name("otp_codes"), ConsistentRead=True)["Items"]


def sent_ok(r: requests.Response) -> bool:
    return r.status_code == 200 and r.json() == {"message": SENT, "resend_after": 60, "expires_in": 300}


# --- the happy path ------------------------------------------------------------------------------


def test_right_code_binds_as_a_binding_code_does_and_is_audited(rig):
    clock = rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    # the room as the tenant types it (lower case, spaces, no building) and the phone with +86
    r = rig.ask(auth, ip, property_id=place.property_id, room=" b-201 ", phone=f"+86 {place.phone}")
    assert sent_ok(r), r.text
    code = rig.code_for(place.phone)
    # stored hashed: the code is in no attribute of the record, and no phone number either
    [item] = [i for i in otp_items() if i["openid"]["S"] == openid]
    assert all(code not in str(v) and place.phone not in str(v) for v in item.values())
    assert re.fullmatch(r"[0-9a-f]{64}", item["code_hash"]["S"])
    assert tenancy.accounts_of(openid) == []
    clock.advance(minutes=4, seconds=59)  # still good
    r = rig.bind(auth, ip, **place.body(code=code))
    assert r.status_code == 201, r.text
    assert r.json() == {"account_id": place.account_id, "property_id": place.property_id,
                        "property_name": "阳光公寓", "room_name": "B-201", "name": "B201 王租户"}
    [m] = tenancy.memberships_of(openid)
    assert (m.account_id, m.via) == (place.account_id, "phone")
    assert m.bound_at == clock.now.strftime("%Y-%m-%dT%H") + ":04:59.000000Z"  # the hour + 4:59, the service's clock
    records, _ = action_log.query(place.property_id, clock.now - timedelta(hours=1), clock.now + timedelta(hours=1),
                                  action="tenant_bound")
    [rec] = records
    masked = place.phone[:3] + "****" + place.phone[-4:]
    assert rec.after == {"via": "phone", "phone": "+86" + masked} and rec.role == "tenant"
    assert rec.target == f"account:{place.account_id}" and openid not in rec.actor_id
    # the account is the user's now: the tenant API shows it
    assert requests.get(f"{rig.base}/api/v1/accounts/{place.account_id}", headers=auth, timeout=T).status_code == 200


def test_room_by_id_with_its_building(rig):
    rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    assert sent_ok(rig.ask(auth, ip, property_id=place.property_id, building_id="B", room="B201", phone=place.phone))
    r = rig.bind(auth, ip, property_id=place.property_id, building_id="B", room="B201", phone=place.phone,
                 code=rig.code_for(place.phone))
    assert r.status_code == 201 and r.json()["account_id"] == place.account_id


# --- refusals of the code ------------------------------------------------------------------------


def test_wrong_code_five_times_burns_it(rig):
    rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    assert sent_ok(rig.ask(auth, ip, **place.body()))
    code = rig.code_for(place.phone)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    # a malformed code is a 400 of its own and spends no attempt
    assert refused(rig.bind(auth, ip, **place.body(code="12ab")), 400, "phone_code_format")
    for left in (4, 3, 2, 1):
        assert refused(rig.bind(auth, ip, **place.body(code=wrong)), 400, "phone_code_wrong",
                       f"验证码错误，还可以再试 {left} 次")
    burned = "验证码错误次数过多，已失效，请重新获取"
    assert refused(rig.bind(auth, ip, **place.body(code=wrong)), 400, "phone_code_burned", burned)
    # the right code cannot be used any more, and nothing was bound
    assert refused(rig.bind(auth, ip, **place.body(code=code)), 400, "phone_code_burned", burned)
    assert tenancy.accounts_of(openid) == []


def test_expired_code_is_refused(rig):
    clock = rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    assert sent_ok(rig.ask(auth, ip, **place.body()))
    code = rig.code_for(place.phone)
    clock.advance(minutes=5)
    assert refused(rig.bind(auth, ip, **place.body(code=code)), 400, "phone_code_expired", "验证码已过期，请重新获取")
    assert tenancy.accounts_of(openid) == []


def test_a_used_code_cannot_be_replayed(rig):
    rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    assert sent_ok(rig.ask(auth, ip, **place.body()))
    code = rig.code_for(place.phone)
    assert rig.bind(auth, ip, **place.body(code=code)).status_code == 201
    assert refused(rig.bind(auth, ip, **place.body(code=code)), 400, "phone_code_used", "验证码已使用，请重新获取")
    # the user leaves; the old code does not bring them back
    assert requests.delete(f"{rig.base}/api/v1/bindings/{place.account_id}", headers=auth, timeout=T).status_code == 204
    assert refused(rig.bind(auth, ip, **place.body(code=code)), 400, "phone_code_used")
    assert tenancy.accounts_of(openid) == []


def test_a_code_is_good_only_for_the_wechat_user_who_asked(rig):
    rig.fresh_clock()
    place, ip = Place(), an_ip()
    mine, other = rig.login(oid()), rig.login(oid())
    assert sent_ok(rig.ask(mine, ip, **place.body()))
    code = rig.code_for(place.phone)
    for _ in range(6):  # another user's tries are refused and spend none of the owner's attempts
        assert refused(rig.bind(other, ip, **place.body(code=code)), 400, "phone_code_missing", "请先获取验证码")
    assert rig.bind(mine, ip, **place.body(code=code)).status_code == 201


def test_a_new_code_replaces_the_old_one_after_the_cool_down(rig):
    clock = rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    assert sent_ok(rig.ask(auth, ip, **place.body()))
    first = rig.code_for(place.phone)
    r = rig.ask(auth, ip, **place.body())
    assert refused(r, 429, "phone_code_too_soon", "验证码已发送，请 60 秒后再重新获取") and r.headers["Retry-After"] == "60"
    clock.advance(seconds=59)
    r = rig.ask(auth, ip, **place.body())
    assert refused(r, 429, "phone_code_too_soon") and r.headers["Retry-After"] == "1"
    assert len(rig.sms_to(place.phone)) == 1
    clock.advance(seconds=1)
    assert sent_ok(rig.ask(auth, ip, **place.body()))
    assert len(rig.sms_to(place.phone)) == 2
    second = rig.code_for(place.phone)
    if second != first:  # one in a million draws the same six digits
        assert refused(rig.bind(auth, ip, **place.body(code=first)), 400, "phone_code_wrong")
    assert rig.bind(auth, ip, **place.body(code=second)).status_code == 201


# --- nothing to enumerate ------------------------------------------------------------------------


def test_a_phone_that_does_not_match_gets_the_same_answer_and_no_sms(rig):
    clock = rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    stranger = a_phone()
    r = rig.ask(auth, ip, **place.body(phone=stranger))
    assert sent_ok(r)
    assert rig.sms_to(stranger) == [] and rig.sms_to(place.phone) == []
    # a room that does not exist: the same
    assert sent_ok(rig.ask(auth, an_ip(), **place.body(room="Z-999", phone=a_phone())))
    # and the rest behaves as for a real code: the cool-down, the attempts, burned after 5
    r = rig.ask(auth, ip, **place.body(phone=stranger))
    assert refused(r, 429, "phone_code_too_soon") and r.headers["Retry-After"] == "60"
    for left in (4, 3, 2, 1):
        assert refused(rig.bind(auth, ip, **place.body(phone=stranger, code="000000")), 400, "phone_code_wrong",
                       f"验证码错误，还可以再试 {left} 次")
    assert refused(rig.bind(auth, ip, **place.body(phone=stranger, code="000000")), 400, "phone_code_burned")
    clock.advance(minutes=1)
    assert sent_ok(rig.ask(auth, ip, **place.body(phone=stranger)))
    clock.advance(minutes=5)
    assert refused(rig.bind(auth, ip, **place.body(phone=stranger, code="000000")), 400, "phone_code_expired")
    assert rig.sms_to(stranger) == [] and tenancy.accounts_of(openid) == []


def test_another_propertys_room_is_not_found_from_this_property(rig):
    rig.fresh_clock()
    here, there = Place(), Place()  # both have a room "B-201"
    openid, ip = oid(), an_ip()
    auth = rig.login(openid)
    # there's tenant's phone with here's property: no SMS, the same answer
    assert sent_ok(rig.ask(auth, ip, property_id=here.property_id, room="B-201", phone=there.phone))
    assert rig.sms_to(there.phone) == []
    # a code for there's room does not bind at here's property (nor anything else)
    rig.clock.advance(minutes=1)
    assert sent_ok(rig.ask(auth, ip, **there.body()))
    code = rig.code_for(there.phone)
    assert refused(rig.bind(auth, ip, property_id=here.property_id, room="B-201", phone=there.phone, code=code),
                   400, "phone_code_wrong")
    assert tenancy.accounts_of(openid) == []
    assert rig.bind(auth, ip, **there.body(code=code)).json()["account_id"] == there.account_id


# --- bad input and limits ------------------------------------------------------------------------


def test_bad_input_is_a_400_and_writes_nothing(rig):
    rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    before = len(otp_items())
    assert refused(rig.ask(auth, ip, **place.body(phone="12345")), 400, "phone_invalid")
    assert refused(rig.ask(auth, ip, **place.body(room="  ")), 400, "room_invalid")
    assert refused(rig.ask(auth, ip, **place.body(property_id="p#1")), 400, "id_invalid")
    assert refused(rig.ask(auth, ip, property_id=place.property_id, room="B-201"), 400, "phone_invalid")
    assert len(otp_items()) == before and rig.sms_to(place.phone) == []
    # and without a token: 401
    r = requests.post(f"{rig.base}/api/v1/bindings/phone-code", json=place.body(), timeout=T)
    assert r.status_code == 401


def test_requests_per_number_are_limited_with_retry_after(rig):
    clock = rig.fresh_clock()
    place, ip = Place(), an_ip()
    auth = rig.login(oid())
    for _ in range(5):  # 5 an hour, a minute apart (the cool-down)
        assert sent_ok(rig.ask(auth, ip, **place.body()))
        clock.advance(minutes=1)
    r = rig.ask(rig.login(oid()), an_ip(), **place.body())  # another address, another user: the number's limit
    assert refused(r, 429, "rate_limited", "操作过于频繁，请稍后再试") and r.headers["Retry-After"] == "3300"
    assert len(rig.sms_to(place.phone)) == 5


def test_requests_per_wechat_user_and_per_address_are_limited(rig, setenv):
    setenv("FEIKONG_OTP_LIMIT_PER_IP", "3")
    rig.fresh_clock()
    place, openid, ip = Place(), oid(), an_ip()
    auth = rig.login(openid)
    for _ in range(10):  # 10 an hour per user, whatever the numbers
        assert sent_ok(rig.ask(auth, an_ip(), **place.body(phone=a_phone())))
    r = rig.ask(auth, an_ip(), **place.body())
    assert refused(r, 429, "rate_limited") and r.headers["Retry-After"] == "3600"
    assert rig.sms_to(place.phone) == []  # refused before anything was sent
    for _ in range(3):  # 3 an hour from one address (set for this test), whoever asks
        assert sent_ok(rig.ask(rig.login(oid()), ip, **place.body(phone=a_phone())))
    r = rig.ask(rig.login(oid()), ip, **place.body())
    assert refused(r, 429, "rate_limited") and r.headers["Retry-After"] == "3600"
    assert rig.sms_to(place.phone) == []
