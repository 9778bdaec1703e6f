"""The rules of one-time SMS codes for binding by phone + room (core/domain/phone_codes.py):
expiry on an injected time, attempts, one use, the code never kept in plain. Expected values
are worked by hand (times, counts, messages) or computed here with hmac directly."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from core.domain import phone_codes as rules
from core.domain.errors import ValidationError
from core.domain.phone_codes import RoomRef, Verdict

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
KEY = b"k" * 32
PHONE, OPENID, TARGET = "13912345678", "o-user-1", "accounts:a-1"


def rec_at(now: datetime, code: str = "123456", attempts: int = 0, used_at: str = "") -> rules.CodeRecord:
    r = rules.record(rules.subject(PHONE), OPENID, rules.code_hash(KEY, PHONE, TARGET, OPENID, code), now)
    return rules.CodeRecord(r.subject, r.openid, r.code_hash, r.sent_at, r.expires_at, attempts, used_at)


def h(code: str, openid: str = OPENID, target: str = TARGET) -> str:
    return rules.code_hash(KEY, PHONE, target, openid, code)


# --- input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["13912345678", "139 1234 5678", "139-1234-5678", "+86 13912345678",
                                   "8613912345678", "１３９１２３４５６７８"])
def test_phone_as_typed_becomes_the_records_form(typed):
    assert rules.normalize_phone(typed) == "13912345678"


@pytest.mark.parametrize("bad", ["", "12912345678", "1391234567", "+1 4155550100", None, 13912345678])
def test_bad_phone_is_a_400(bad):
    with pytest.raises(ValidationError) as e:
        rules.normalize_phone(bad)
    assert e.value.code == "phone_invalid" and e.value.status == 400


@pytest.mark.parametrize("bad", ["12345", "1234567", "12a456", "", None, 123456])
def test_code_must_be_six_digits(bad):
    with pytest.raises(ValidationError) as e:
        rules.normalize_code(bad)
    assert e.value.code == "phone_code_format"
    assert rules.normalize_code(" 012345 ") == "012345"


def test_room_found_by_id_or_by_name_as_typed_and_not_when_ambiguous():
    rooms = [RoomRef("B", "B201", "B-201"), RoomRef("A", "A201", "201"), RoomRef("C", "C201", "201")]
    assert rules.find_room(rooms, "b201") == rooms[0]  # by id
    assert rules.find_room(rooms, " ｂ－２０１ ") == rooms[0]  # by name, full-width and spaces folded
    assert rules.find_room(rooms, "201") is None  # two buildings share the name: the building is needed
    assert rules.find_room(rooms[:2], "201") == rooms[1]
    assert rules.find_room(rooms, "Z-999") is None
    with pytest.raises(ValidationError):
        rules.find_room(rooms, "   ")


# --- codes and their hash ------------------------------------------------------------------


def test_codes_are_six_digits_with_leading_zeros_from_the_draw():
    asked = []
    assert rules.new_code(lambda n: asked.append(n) or 42) == "000042"
    assert asked == [1_000_000]
    assert all(len(rules.new_code()) == 6 and rules.new_code().isdigit() for _ in range(50))


def test_the_code_is_kept_only_as_an_hmac_of_everything_it_is_good_for():
    r = rec_at(T0, code="123456")
    expected = hmac.new(KEY, b"bind\x0013912345678\x00accounts:a-1\x00o-user-1\x00123456", hashlib.sha256).hexdigest()
    assert r.code_hash == expected
    assert "123456" not in repr(r) and PHONE not in repr(r)
    # a plain sha256 of the code (which 10^6 tries would undo) is not what is kept
    assert r.code_hash != hashlib.sha256(b"123456").hexdigest()
    # another key, user, target or code: another hash
    assert len({r.code_hash, rules.code_hash(b"x" * 32, PHONE, TARGET, OPENID, "123456"), h("123456", "o-user-2"),
                h("123456", target="accounts:a-2"), h("123457")}) == 5
    assert rules.subject(PHONE) == "bind#" + hashlib.sha256(b"bind|13912345678").hexdigest()[:40]


def test_the_key_is_derived_from_the_secret_not_the_secret_itself():
    k = rules.derive_key("a-deployment-secret")
    assert k == hmac.new(b"a-deployment-secret", b"feikong phone-code key v1", hashlib.sha256).digest()
    assert k != b"a-deployment-secret"


# --- expiry, attempts, one use -------------------------------------------------------------


def test_expiry_on_the_given_clock():
    r = rec_at(T0)
    assert r.sent_at == "2026-03-01T08:00:00.000000Z" and r.expires_at == "2026-03-01T08:05:00.000000Z"
    assert rules.judge(rec_at(T0, attempts=1), OPENID, h("123456"), T0 + timedelta(minutes=4, seconds=59),
                       True) is Verdict.OK
    assert rules.judge(rec_at(T0, attempts=1), OPENID, h("123456"), T0 + timedelta(minutes=5), True) is Verdict.EXPIRED


def test_attempts_wrong_until_the_fifth_then_burned():
    for attempts, verdict in ((1, Verdict.WRONG), (4, Verdict.WRONG), (5, Verdict.BURNED)):
        assert rules.judge(rec_at(T0, attempts=attempts), OPENID, h("999999"), T0, True) is verdict
    # the right code on the fifth attempt still binds
    assert rules.judge(rec_at(T0, attempts=5), OPENID, h("123456"), T0, True) is Verdict.OK
    # no attempt left to take: burned, even for the right code
    assert rules.judge(rec_at(T0, attempts=5), OPENID, h("123456"), T0, False) is Verdict.BURNED
    assert str(rules.refusal(Verdict.WRONG, rec_at(T0, attempts=2))) == "验证码错误，还可以再试 3 次"
    assert rules.refusal(Verdict.BURNED, None).code == "phone_code_burned"


def test_one_use_and_only_for_the_user_who_asked():
    used = rec_at(T0, attempts=1, used_at="2026-03-01T08:01:00.000000Z")
    assert rules.judge(used, OPENID, h("123456"), T0 + timedelta(minutes=2), False) is Verdict.USED
    assert rules.judge(rec_at(T0), "o-someone-else", h("123456", "o-someone-else"), T0, False) is Verdict.MISSING
    assert rules.judge(None, OPENID, h("123456"), T0, False) is Verdict.MISSING
    assert rules.refusal(Verdict.USED, used).message == "验证码已使用，请重新获取"
    assert rules.refusal(Verdict.EXPIRED, used).message == "验证码已过期，请重新获取"


def test_resend_cool_down_of_sixty_seconds():
    r = rec_at(T0)
    assert rules.resend_wait(None, T0) == 0
    assert rules.resend_wait(r, T0) == 60
    assert rules.resend_wait(r, T0 + timedelta(seconds=59, microseconds=500_000)) == 1
    assert rules.resend_wait(r, T0 + timedelta(seconds=60)) == 0
    assert rules.cooldown_before(T0 + timedelta(seconds=60)) == r.sent_at  # replaceable from then on
    e = rules.ResendTooSoon(42)
    assert (e.status, e.code, e.retry_after, e.message) == (429, "phone_code_too_soon", 42,
                                                            "验证码已发送，请 42 秒后再重新获取")


def test_a_decoy_target_differs_from_any_accounts():
    assert rules.target(["a-2", "a-1"], "p1", "B-201") == "accounts:a-1,a-2"
    assert rules.target([], "p1", "B-201") == "none:p1|B-201"
    assert rules.SMS_TEXT.format(code="012345", minutes=5) == "您的绑定验证码为 012345，5 分钟内有效。如非本人操作请忽略。"
