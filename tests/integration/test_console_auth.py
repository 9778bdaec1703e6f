"""Console logins (docs/console.md) over the real Flask app (test client) against the
emulator: the CLI's owner logs in; lockout after 5 bad passwords for 15 minutes (an
injected clock); TOTP; CSRF; roles (403) and property scoping (404); logout; password
change; the action log. Expected values are written out by hand from the rules in
docs/console.md."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from flask import Blueprint, jsonify

from core.domain.action_log import company_partition
from core.services import action_log
from core.services.admin_auth import AdminAuth
from miniprogram_api.admin_auth import SERVICE_KEY, admin_required, current_admin
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Clock, World, uid

GENERIC = "用户名或密码错误"
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
IP = "203.0.113.7"

probe = Blueprint("probe", __name__)


@probe.post("/p/<property_id>/probe/operate")
@admin_required("operate")
def operate_probe(property_id: str):
    """A view that needs "operate" (as the switch and settings views do)."""
    return jsonify({"ok": True, "by": current_admin().admin_id})


@probe.post("/p/<property_id>/probe/money")
@admin_required("money")
def money_probe(property_id: str):
    return jsonify({"ok": True})


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def app(clock):
    app = create_app()
    app.extensions[SERVICE_KEY] = AdminAuth(clock=clock)
    app.register_blueprint(probe)
    return app


@pytest.fixture
def client(app):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = IP  # the address the action log records
    return c


def logins(company_id: str, since: datetime = START - timedelta(days=1)) -> list:
    records, _ = action_log.query(company_partition(company_id), since, START + timedelta(days=2), limit=200)
    return records


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.admins", *args], input=stdin, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


# -- the CLI's owner logs in -------------------------------------------------------------------


def test_an_owner_made_by_the_cli_logs_in_and_sees_the_company_property(world, client):
    company, email = uid("co"), f"{uid('boss')}@example.com"
    out = run_cli("create-owner", "--company", company, "--email", email.upper(), "--name", "王经理",
                  "--property", world.property_id, "--password-stdin", stdin="Owner-pass-2026\n")
    assert out.returncode == 0, out.stderr
    assert f"created: {email} (owner) of company {company}" in out.stdout
    assert "password:" not in out.stdout  # given on stdin: never printed

    assert client.get(f"/p/{world.property_id}/rooms").status_code == 302  # not logged in: to /login
    r = admins.login(client, email, "Owner-pass-2026", next_url=f"/p/{world.property_id}/rooms")
    assert r.status_code == 302 and r.headers["Location"] == f"/p/{world.property_id}/rooms"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie  # Secure too, except on a local run
    page = client.get(f"/p/{world.property_id}/rooms")
    assert page.status_code == 200 and "王经理" in page.get_data(as_text=True)
    assert client.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 200


def test_the_cli_refuses_a_weak_password_and_a_second_owner_of_a_taken_property(world):
    out = run_cli("create-owner", "--company", uid("co"), "--email", f"{uid('a')}@example.com", "--name", "甲",
                  "--property", world.property_id, "--password-stdin", stdin="short\n")
    assert out.returncode == 2 and "新密码至少 10 个字符" in out.stderr
    out = run_cli("create-owner", "--company", uid("co"), "--email", f"{uid('b')}@example.com", "--name", "乙",
                  "--property", world.property_id)
    assert out.returncode == 2 and "该物业已属于其他公司" in out.stderr


def test_a_login_made_without_a_password_prints_one_that_works(world, client):
    email = f"{uid('gen')}@example.com"
    out = run_cli("create-owner", "--company", uid("co"), "--email", email, "--name", "李", "--property",
                  world.property_id)
    assert out.returncode == 0, out.stderr
    password = re.search(r"^password: (\S+)$", out.stdout, re.M).group(1)
    assert admins.login(client, email, password).status_code == 302


# -- lockout -----------------------------------------------------------------------------------------


def test_five_bad_passwords_lock_for_15_minutes_even_the_right_one(world, client, clock):
    who = admins.make_admin(world.property_id)
    for _ in range(5):
        r = admins.login(client, who.email, "wrong-password-1")
        assert r.status_code == 401 and GENERIC in r.get_data(as_text=True)
    clock.advance(minutes=14, seconds=59)
    r = admins.login(client, who.email, who.password)  # right, but locked: the same answer
    assert r.status_code == 401 and GENERIC in r.get_data(as_text=True)
    assert client.get(f"/p/{world.property_id}/rooms").status_code == 302  # no session was made
    clock.advance(seconds=1)  # 15 minutes after the fifth failure
    assert admins.login(client, who.email, who.password).status_code == 302
    actions = [r.action for r in reversed(logins(who.company_id)) if r.target == who.email]
    assert actions == ["login_failed"] * 5 + ["login_locked", "login"]


def test_four_failures_then_success_forgets_them(world, client):
    who = admins.make_admin(world.property_id)
    for _ in range(4):
        assert admins.login(client, who.email, "wrong-password-1").status_code == 401
    assert admins.login(client, who.email, who.password).status_code == 302
    client.post("/logout", data={"csrf_token": admins.csrf_token(client, f"/p/{world.property_id}/rooms")})
    for _ in range(4):  # counting starts again: four more do not lock
        assert admins.login(client, who.email, "wrong-password-1").status_code == 401
    assert admins.login(client, who.email, who.password).status_code == 302


def test_an_unknown_login_gets_the_same_answer(client):
    r = admins.login(client, f"{uid('nobody')}@example.com", "whatever-password")
    assert r.status_code == 401 and GENERIC in r.get_data(as_text=True)
    r = admins.login(client, "not a login!", "x")
    assert r.status_code == 401 and GENERIC in r.get_data(as_text=True)


# -- TOTP --------------------------------------------------------------------------------------------


def test_with_totp_on_a_login_needs_a_valid_code_once(world, client, clock):
    who = admins.make_admin(world.property_id)
    admins.logged_in(client, who)
    page = client.get("/account/totp").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    totp = pyotp.TOTP(secret)
    token = admins.csrf_token(client, "/account/totp")
    r = client.post("/account/totp", data={"csrf_token": token, "password": who.password, "code": "000000"})
    assert r.status_code == 400 and "动态验证码不正确" in r.get_data(as_text=True)
    r = client.post("/account/totp", data={"csrf_token": token, "password": who.password, "code": totp.at(START)})
    assert r.status_code == 302
    assert "已开启" in client.get("/account/totp").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": token})

    clock.advance(seconds=60)
    r = admins.login(client, who.email, who.password)  # no code
    assert r.status_code == 401 and GENERIC in r.get_data(as_text=True)
    r = admins.login(client, who.email, who.password, code=totp.at(START))  # the code already used (2 steps ago)
    assert r.status_code == 401
    code = totp.at(clock.now)
    assert admins.login(client, who.email, who.password, code=code).status_code == 302
    client.post("/logout", data={"csrf_token": admins.csrf_token(client, "/account/password")})
    assert admins.login(client, who.email, who.password, code=code).status_code == 401  # a code works once
    reasons = [r.after.get("reason") for r in reversed(logins(who.company_id))
               if r.target == who.email and r.action == "login_failed"]
    assert reasons == ["bad_code", "bad_code", "bad_code"]


# -- CSRF ----------------------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_a_400_and_changes_nothing(app, world, client):
    who = admins.make_admin(world.property_id)
    admins.logged_in(client, who)
    new = {"old_password": who.password, "password": "A-new-password-42", "password2": "A-new-password-42"}
    r = client.post("/account/password", data=new)
    assert r.status_code == 400 and "缺少安全令牌" in r.get_data(as_text=True) and "<html" in r.get_data(as_text=True)
    r = client.post("/account/password", data=dict(new, csrf_token="forged"), headers={"HX-Request": "true"})
    assert r.status_code == 400 and r.json["error"]["code"] == "csrf_invalid" and "刷新页面" in r.json["error"]["message"]
    r = client.post(f"/p/{world.property_id}/probe/operate", json={})
    assert r.status_code == 400 and r.json["error"]["code"] == "csrf_invalid"
    # nothing changed: the old password still logs in, the new one does not
    other = app.test_client()
    assert admins.login(other, who.email, "A-new-password-42").status_code == 401
    assert admins.login(other, who.email, who.password).status_code == 302
    # the htmx header carries the token as well as a form field
    token = admins.csrf_token(client, "/account/password")
    r = client.post(f"/p/{world.property_id}/probe/operate", headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.json == {"ok": True, "by": who.email}


def test_the_tenant_api_needs_no_csrf_token(client):
    r = client.post("/api/v1/login", json={"code": ""})
    assert r.status_code == 400 and r.json["error"]["code"] != "csrf_invalid"


# -- roles and properties -----------------------------------------------------------------------------


def test_a_viewer_may_look_but_not_operate(world, client):
    owner = admins.make_admin(world.property_id)
    viewer = admins.make_admin(world.property_id, role="viewer", company_id=owner.company_id)
    admins.logged_in(client, viewer)
    assert client.get(f"/p/{world.property_id}/rooms").status_code == 200
    token = admins.csrf_token(client, "/account/password")
    for path in (f"/p/{world.property_id}/probe/operate", f"/p/{world.property_id}/probe/money"):
        r = client.post(path, headers={"X-CSRFToken": token})
        assert r.status_code == 403 and r.json["error"] == {"code": "forbidden", "message": "没有权限执行此操作"}


def test_finance_handles_money_but_does_not_operate(world, client):
    owner = admins.make_admin(world.property_id)
    finance = admins.make_admin(world.property_id, role="finance", company_id=owner.company_id)
    admins.logged_in(client, finance)
    token = admins.csrf_token(client, "/account/password")
    assert client.post(f"/p/{world.property_id}/probe/money", headers={"X-CSRFToken": token}).status_code == 200
    assert client.post(f"/p/{world.property_id}/probe/operate", headers={"X-CSRFToken": token}).status_code == 403


def test_a_property_not_granted_is_not_found(app, world, client, aws):
    other = World()  # another company's property
    second = World()  # the same company's, not granted to the operator
    owner = admins.make_admin(world.property_id, second.property_id)
    admins.make_admin(other.property_id)
    operator = admins.make_admin(world.property_id, role="operator", company_id=owner.company_id)
    admins.logged_in(client, operator)
    token = admins.csrf_token(client, "/account/password")
    missing = {"error": {"code": "property_not_found", "message": "物业不存在"}}
    for pid in (other.property_id, second.property_id, "no-such-property"):
        r = client.get(f"/admin/api/properties/{pid}/rooms")
        assert r.status_code == 404 and r.json["error"]["code"] == missing["error"]["code"]
        assert r.json["error"]["message"] == missing["error"]["message"]
        assert client.get(f"/p/{pid}/rooms").status_code == 404
        assert client.post(f"/p/{pid}/probe/operate", headers={"X-CSRFToken": token}).status_code == 404
    assert client.post(f"/p/{world.property_id}/probe/operate", headers={"X-CSRFToken": token}).status_code == 200
    # the owner sees both of the company's properties, not the other company's
    owner_client = app.test_client()
    admins.logged_in(owner_client, owner)
    assert owner_client.get(f"/admin/api/properties/{second.property_id}/rooms").status_code == 200
    assert owner_client.get(f"/admin/api/properties/{other.property_id}/rooms").status_code == 404


def test_without_a_login_pages_go_to_login_and_the_api_says_401(world, client):
    r = client.get(f"/p/{world.property_id}/rooms")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
    r = client.get(f"/admin/api/properties/{world.property_id}/rooms")
    assert r.status_code == 401 and r.json["error"] == {"code": "unauthorized", "message": "请先登录"}


def test_login_never_redirects_off_site(app, world):
    who = admins.make_admin(world.property_id)
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = admins.login(app.test_client(), who.email, who.password, next_url=evil)
        assert r.status_code == 302 and r.headers["Location"] == "/"


# -- logout, password change ----------------------------------------------------------------------------


def test_logout_ends_the_session_even_for_a_copy_of_its_cookie(app, world, client):
    who = admins.make_admin(world.property_id)
    admins.logged_in(client, who)
    stolen = client.get_cookie("feikong_console").value
    r = client.post("/logout", data={"csrf_token": admins.csrf_token(client, "/account/password")})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert client.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 401
    replay = app.test_client()
    replay.set_cookie("feikong_console", stolen)
    assert replay.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 401


def test_a_password_change_needs_the_old_password_and_ends_other_sessions(app, world, client):
    who = admins.make_admin(world.property_id)
    admins.logged_in(client, who)
    elsewhere = admins.logged_in(app.test_client(), who)
    token = admins.csrf_token(client, "/account/password")
    new = "Another-password-77"
    r = client.post("/account/password", data={"csrf_token": token, "old_password": "not-the-password",
                                               "password": new, "password2": new})
    assert r.status_code == 400 and "原密码不正确" in r.get_data(as_text=True)
    r = client.post("/account/password", data={"csrf_token": token, "old_password": who.password,
                                               "password": "short", "password2": "short"})
    assert r.status_code == 400 and "新密码至少 10 个字符" in r.get_data(as_text=True)
    assert elsewhere.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 200  # unchanged so far
    r = client.post("/account/password", data={"csrf_token": token, "old_password": who.password,
                                               "password": new, "password2": new})
    assert r.status_code == 302
    assert client.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 200  # this one stays
    assert elsewhere.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 401  # others end
    fresh = app.test_client()
    assert admins.login(fresh, who.email, who.password).status_code == 401
    assert admins.login(fresh, who.email, new).status_code == 302


def test_sessions_end_12_hours_after_login(world, client, clock):
    who = admins.make_admin(world.property_id)
    admins.logged_in(client, who)
    clock.advance(hours=11, minutes=59)
    assert client.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 200
    clock.advance(minutes=1)
    assert client.get(f"/admin/api/properties/{world.property_id}/rooms").status_code == 401


# -- the action log ---------------------------------------------------------------------------------------


def test_the_action_log_records_logins_with_actor_and_ip(world, client, clock):
    who = admins.make_admin(world.property_id, name="赵会计")
    assert admins.login(client, who.email, "wrong-password-1").status_code == 401
    clock.advance(seconds=1)
    admins.logged_in(client, who)
    clock.advance(seconds=1)
    client.post("/logout", data={"csrf_token": admins.csrf_token(client, "/account/password")})
    records = [r for r in logins(who.company_id) if r.target == who.email]
    assert [r.action for r in records] == ["logout", "login", "login_failed"]  # newest first
    assert [r.at for r in records] == [START + timedelta(seconds=2), START + timedelta(seconds=1), START]
    for r in records:
        assert (r.actor_id, r.actor_name, r.role, r.ip) == (who.email, "赵会计", "owner", IP)
    assert records[2].after == {"reason": "bad_password", "failures": 1}
    # paged, filtered by action: one record per page, the cursor leads to the next, then the end
    partition, until = company_partition(who.company_id), START + timedelta(seconds=3)
    page1, cursor = action_log.query(partition, START, until, actor=who.email, limit=2)
    page2, end = action_log.query(partition, START, until, actor=who.email, cursor=cursor, limit=2)
    assert [r.action for r in page1 + page2] == ["logout", "login", "login_failed"] and end is None
    only, _ = action_log.query(partition, START, until, action="login_failed", actor=who.email)
    assert [r.at for r in only] == [START]
