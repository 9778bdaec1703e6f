"""The console's account rules (core/domain/admins.py), pure: the permission matrix of
docs/console.md written out by hand, the lockout arithmetic, sessions and scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain import admins as rules
from core.domain.admins import AdminUser, Company
from core.domain.errors import ValidationError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# docs/console.md's table: permission -> roles that hold it
MATRIX = {
    "view": {"owner", "operator", "finance", "viewer"},
    "operate": {"owner", "operator"},
    "money": {"owner", "finance"},
    "admin": {"owner"},
}


@pytest.mark.parametrize("permission", MATRIX)
@pytest.mark.parametrize("role", ["owner", "operator", "finance", "viewer"])
def test_the_permission_matrix(role, permission):
    assert rules.can(role, permission) is (role in MATRIX[permission])


def test_an_unknown_permission_is_a_bug_not_a_refusal():
    with pytest.raises(ValueError):
        rules.can("owner", "everything")


def user(**kw) -> AdminUser:
    return AdminUser(**{"admin_id": "a@x.cn", "company_id": "c1", "name": "甲", "role": "operator",
                        "password_hash": "h", **kw})


def test_the_fifth_failure_in_a_row_locks_for_15_minutes_and_failures_while_locked_change_nothing():
    u = user()
    for n in range(1, 5):
        u = rules.failed_login(u, T0)
        assert (u.failures, u.locked_until) == (n, None)
    u = rules.failed_login(u, T0 + timedelta(minutes=1))
    assert u.locked_until == datetime(2026, 3, 2, 9, 16, tzinfo=UTC) and u.failures == 0
    assert rules.failed_login(u, T0 + timedelta(minutes=10)) == u  # not extended
    assert u.locked(datetime(2026, 3, 2, 9, 15, 59, tzinfo=UTC))
    assert not u.locked(datetime(2026, 3, 2, 9, 16, tzinfo=UTC))


def test_a_login_resets_failures_and_keeps_at_most_10_live_sessions():
    u = user(failures=3)
    for i in range(12):
        u = rules.logged_in(u, f"k{i}", T0 + timedelta(minutes=i))
    assert u.failures == 0 and len(u.sessions) == 10 and "k0" not in u.sessions and "k1" not in u.sessions
    assert u.sessions["k11"] == datetime(2026, 3, 2, 21, 11, tzinfo=UTC)  # 12 hours after its login
    assert rules.session_live(u, "k11", datetime(2026, 3, 2, 21, 10, tzinfo=UTC))
    assert not rules.session_live(u, "k11", datetime(2026, 3, 2, 21, 11, tzinfo=UTC))
    assert not rules.session_live(rules.logged_out(u, "k11"), "k11", T0)


def test_an_owner_sees_the_company_others_what_was_granted_and_the_company_still_holds():
    company = Company("c1", "公司", ("p1", "p2"))
    assert user(role="owner").properties(company) == ("p1", "p2")
    assert user(property_ids=("p2", "p9")).properties(company) == ("p2",)
    who = rules.principal(user(role="viewer", property_ids=("p1",)), company)
    assert who.can("view", "p1") and not who.can("view", "p2") and not who.can("operate", "p1")


@pytest.mark.parametrize("login,stored", [(" Boss@Example.COM ", "boss@example.com"), ("ops.1", "ops.1")])
def test_login_names_are_case_and_space_blind(login, stored):
    assert rules.normalize_login(login) == stored


@pytest.mark.parametrize("login", ["", "a b@x.cn", "名字@x.cn", "a#b", "x" * 65, None])
def test_bad_login_names(login):
    with pytest.raises(ValidationError):
        rules.normalize_login(login)


@pytest.mark.parametrize("password,problem", [
    ("short", "新密码至少 10 个字符"), ("aaaaaaaaaaaa", "新密码过于简单"), ("x" * 129, "新密码不能超过 128 个字符"),
    ("my-boss-password", "新密码不能包含登录名"), ("Correct-horse-9", None),
])
def test_password_rules(password, problem):
    assert rules.password_problem(password, "boss@example.com") == problem
