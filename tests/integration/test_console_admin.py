"""Property settings (物业设置) and users (用户管理) (docs/console.md "Property settings",
"Users") over the real Flask app (test client, real login form and CSRF token) against the
emulator. Expected values are written out by hand from the rules in docs/console.md:
the stored protection documents, the action log's before / after, who may do what."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from openapi_spec_validator import validate

from core.domain.action_log import company_partition
from core.services import action_log, control
from core.store import admins as astore
from core.store import tariffs as tariffs_store
from miniprogram_api import console_admin
from miniprogram_api.app import create_app
from miniprogram_api.openapi import build_document
from testkit import admins
from testkit.builders import World, uid

DEFAULTS = {"night": ["22:00", "08:00"], "weekends": False, "holidays": True, "grace_minutes": 0,
            "timezone": "Asia/Shanghai"}
LAST_OWNER = "公司至少需要一位可登录的所有者"


def make_app():
    """create_app() with this area's blueprint (registered once, also when app.py has it)."""
    app = create_app()
    if console_admin.bp.name not in app.blueprints:
        app.register_blueprint(console_admin.bp)
    return app


@pytest.fixture
def app():
    return make_app()


@pytest.fixture
def co(world: World) -> str:
    return uid("co")


def client_of(app, world: World, company_id: str, role: str = "owner", **kw):
    who = admins.make_admin(world.property_id, role=role, company_id=company_id, **kw)
    client = app.test_client()
    admins.logged_in(client, who)
    return client, who


def token(client, path: str) -> str:
    return admins.csrf_token(client, path)


def records(partition: str, action: str) -> list:
    now = datetime.now(UTC)
    found, _ = action_log.query(partition, now - timedelta(hours=1), now + timedelta(minutes=1), action=action,
                                limit=200)
    return found


def stored(pid: str) -> dict:
    return tariffs_store.get_protection(pid)


# --- property settings ---------------------------------------------------------------------


def test_settings_page_shows_the_defaults_and_an_operator_changes_them(app, world, co):
    pid = world.property_id
    client, who = client_of(app, world, co, role="operator")
    page = client.get(f"/p/{pid}/settings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="night_start" name="night_start" value="22:00"' in html
    assert 'id="night_end" name="night_end" value="08:00"' in html
    assert re.search(r'id="holidays" name="holidays" value="1" checked', html)
    assert not re.search(r'id="weekends" name="weekends" value="1" checked', html)
    assert 'id="save-settings"' in html
    assert stored(pid) == {}  # nothing stored yet: the defaults apply

    assert control.protection(pid).to_dict() == DEFAULTS  # this process now caches the defaults (60 s)
    r = client.post(f"/p/{pid}/settings", data={
        "night_enabled": "1", "night_start": "23:00", "night_end": "07:00", "weekends": "1",
        "grace_minutes": "30", "csrf_token": token(client, f"/p/{pid}/settings")})
    assert r.status_code == 302
    new = {"night": ["23:00", "07:00"], "weekends": True, "holidays": False, "grace_minutes": 30,
           "timezone": "Asia/Shanghai"}
    assert stored(pid) == new
    # the control service of this process forgot its cached copy: it decides with the new settings
    assert control.protection(pid).to_dict() == new
    # Wednesday 2026-03-04 (a workday) 23:30 Beijing is inside 23:00-07:00; 07:00 is not
    assert control.protection(pid).protected(datetime(2026, 3, 4, 15, 30, tzinfo=UTC))
    assert not control.protection(pid).protected(datetime(2026, 3, 4, 23, 0, tzinfo=UTC))
    # Saturday 2026-03-07 noon: weekends protected now
    assert control.protection(pid).protected(datetime(2026, 3, 7, 4, 0, tzinfo=UTC))

    [rec] = records(pid, "protection_settings")
    assert (rec.actor_id, rec.role, rec.target) == (who.email, "operator", f"property:{pid}")
    assert rec.before == DEFAULTS
    assert rec.after == new
    follow = client.get(f"/p/{pid}/settings").get_data(as_text=True)
    assert "断电保护设置已保存" in follow
    assert 'name="night_start" value="23:00"' in follow

    # the same values again: nothing changes, nothing recorded
    r = client.post(f"/p/{pid}/settings", data={
        "night_enabled": "1", "night_start": "23:00", "night_end": "07:00", "weekends": "1",
        "grace_minutes": "30", "csrf_token": token(client, f"/p/{pid}/settings")})
    assert r.status_code == 302
    assert "设置没有变化" in client.get(f"/p/{pid}/settings").get_data(as_text=True)
    assert len(records(pid, "protection_settings")) == 1

    # night protection off
    r = client.post(f"/p/{pid}/settings", data={"night_start": "23:00", "night_end": "07:00", "holidays": "1",
                                                "grace_minutes": "0",
                                                "csrf_token": token(client, f"/p/{pid}/settings")})
    assert r.status_code == 302
    assert stored(pid) == {"night": None, "weekends": False, "holidays": True, "grace_minutes": 0,
                           "timezone": "Asia/Shanghai"}


@pytest.mark.parametrize("fields, field, message", [
    ({"night_start": "25:00"}, "night_start", "夜间保护开始时间格式应为 HH:MM（00:00 至 23:59）"),
    ({"night_end": "8:00"}, "night_end", "夜间保护结束时间格式应为 HH:MM（00:00 至 23:59）"),
    ({"night_end": "22:00"}, "night_end", "夜间保护的开始与结束时间不能相同"),
    ({"grace_minutes": "-1"}, "grace_minutes", "宽限时间必须是 0 到 1440 之间的整数（分钟）"),
    ({"grace_minutes": "1441"}, "grace_minutes", "宽限时间必须是 0 到 1440 之间的整数（分钟）"),
    ({"grace_minutes": "1.5"}, "grace_minutes", "宽限时间必须是 0 到 1440 之间的整数（分钟）"),
    ({"grace_minutes": ""}, "grace_minutes", "宽限时间必须是 0 到 1440 之间的整数（分钟）"),
])
def test_bad_settings_are_refused_in_chinese_and_change_nothing(app, world, co, fields, field, message):
    pid = world.property_id
    control.set_protection(pid, {"night": ["22:00", "06:00"], "weekends": False, "holidays": True,
                                 "grace_minutes": 15})
    before = stored(pid)
    client, _ = client_of(app, world, co)
    form = {"night_enabled": "1", "night_start": "22:00", "night_end": "06:00", "holidays": "1",
            "grace_minutes": "15", **fields, "csrf_token": token(client, f"/p/{pid}/settings")}
    r = client.post(f"/p/{pid}/settings", data=form)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert f'id="error-{field}">{message}<' in html
    assert f'value="{fields.get(field, "")}"' in html  # the form keeps what was typed
    assert stored(pid) == before
    assert records(pid, "protection_settings") == []


def test_settings_permissions(app, world, co):
    pid = world.property_id
    viewer, _ = client_of(app, world, co, role="viewer")
    page = viewer.get(f"/p/{pid}/settings")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="save-settings"' not in html and "只读" in html and "<fieldset class=\"settings-group\" disabled" in html
    r = viewer.post(f"/p/{pid}/settings", data={"grace_minutes": "5", "csrf_token": token(viewer, f"/p/{pid}/settings")})
    assert r.status_code == 403
    r = viewer.put(f"/admin/api/properties/{pid}/settings/protection",
                   json={"night": None, "weekends": True, "holidays": True, "grace_minutes": 5},
                   headers={"X-CSRFToken": token(viewer, f"/p/{pid}/settings")})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert viewer.get(f"/admin/api/properties/{pid}/settings/protection").status_code == 200
    finance, _ = client_of(app, world, co, role="finance")
    assert finance.post(f"/p/{pid}/settings", data={"csrf_token": token(finance, f"/p/{pid}/settings")}).status_code == 403
    # another company's admin: the property does not exist for them
    other = World()
    stranger, _ = client_of(app, other, uid("co"))
    assert stranger.get(f"/p/{pid}/settings").status_code == 404
    r = stranger.get(f"/admin/api/properties/{pid}/settings/protection")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "property_not_found"
    # no CSRF token: refused, nothing changed
    owner, _ = client_of(app, world, co)
    r = owner.post(f"/p/{pid}/settings", data={"night_enabled": "1", "night_start": "21:00", "night_end": "07:00",
                                               "grace_minutes": "0"})
    assert r.status_code == 400
    assert stored(pid) == {} and records(pid, "protection_settings") == []


def test_settings_json(app, world, co):
    pid = world.property_id
    client, who = client_of(app, world, co)
    r = client.get(f"/admin/api/properties/{pid}/settings/protection")
    assert r.status_code == 200
    body = r.get_json()
    assert {k: body[k] for k in DEFAULTS} == DEFAULTS
    assert body["cache_seconds"] == 60 and body["property_id"] == pid
    headers = {"X-CSRFToken": token(client, f"/p/{pid}/settings")}
    good = {"night": ["21:30", "06:15"], "weekends": False, "holidays": True, "grace_minutes": 1440}
    bad = [
        ({**good, "night": ["25:00", "06:15"]}, "time_invalid"),
        ({**good, "night": ["21:30"]}, "night_invalid"),
        ({**good, "grace_minutes": -1}, "grace_invalid"),
        ({**good, "grace_minutes": 1441}, "grace_invalid"),
        ({**good, "grace_minutes": "30"}, "grace_invalid"),
        ({**good, "grace_minutes": True}, "grace_invalid"),
        ({**good, "weekends": "yes"}, "flag_invalid"),
        ({k: v for k, v in good.items() if k != "holidays"}, "field_missing"),
        ({**good, "timezone": "UTC"}, "field_unknown"),
    ]
    for payload, code in bad:
        r = client.put(f"/admin/api/properties/{pid}/settings/protection", json=payload, headers=headers)
        assert r.status_code == 400, payload
        assert r.get_json()["error"]["code"] == code, payload
        assert re.search(r"[\u4e00-\u9fff]", r.get_json()["error"]["message"])
    assert stored(pid) == {} and records(pid, "protection_settings") == []
    r = client.put(f"/admin/api/properties/{pid}/settings/protection", json=good)  # no CSRF header
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf_invalid"
    assert stored(pid) == {}

    r = client.put(f"/admin/api/properties/{pid}/settings/protection", json=good, headers=headers)
    assert r.status_code == 200
    assert r.get_json()["changed"] is True
    assert r.get_json()["night"] == ["21:30", "06:15"] and r.get_json()["grace_minutes"] == 1440
    assert stored(pid) == {**good, "timezone": "Asia/Shanghai"}
    [rec] = records(pid, "protection_settings")
    assert rec.actor_id == who.email and rec.before == DEFAULTS and rec.after == {**good, "timezone": "Asia/Shanghai"}
    r = client.put(f"/admin/api/properties/{pid}/settings/protection", json=good, headers=headers)
    assert r.get_json()["changed"] is False and len(records(pid, "protection_settings")) == 1


# --- users -----------------------------------------------------------------------------------


def users_json(client) -> dict:
    r = client.get("/admin/api/company/users")
    assert r.status_code == 200
    return {u["email"]: u for u in r.get_json()["users"]}


def test_only_owners_see_users_and_other_companies_users_do_not_exist(app, world, co):
    for role in ("operator", "finance", "viewer"):
        c, _ = client_of(app, world, co, role=role)
        assert c.get("/company/users").status_code == 403
        r = c.get("/admin/api/company/users")
        assert r.status_code == 403 and r.get_json()["error"]["message"] == "没有权限执行此操作"
    owner, me = client_of(app, world, co)
    other = World()
    stranger = admins.make_admin(other.property_id, role="operator")
    tok = token(owner, "/company/users")
    for method, path in (("get", f"/company/users/{stranger.email}/edit"),
                         ("get", f"/admin/api/company/users/{stranger.email}"),
                         ("put", f"/admin/api/company/users/{stranger.email}"),
                         ("post", f"/company/users/{stranger.email}/disable"),
                         ("post", f"/company/users/{stranger.email}/password"),
                         ("post", f"/admin/api/company/users/{stranger.email}/disable"),
                         ("get", "/admin/api/company/users/nobody@example.com")):
        kw = {"headers": {"X-CSRFToken": tok}, "json": {"role": "viewer"}} if method == "put" else \
            {"data": {"csrf_token": tok}} if method == "post" else {}
        r = getattr(owner, method)(path, **kw)
        assert r.status_code == 404, (method, path)
    assert astore.get_user(stranger.email).disabled is False
    assert stranger.email not in users_json(owner)


def test_owner_lists_and_creates_users(app, world, co):
    pid = world.property_id
    owner, me = client_of(app, world, co, name="王经理")
    operator = admins.make_admin(pid, role="operator", company_id=co, name="李运营")
    listed = users_json(owner)
    assert set(listed) == {me.email, operator.email}  # only this company's
    assert listed[operator.email] == {
        "email": operator.email, "name": "李运营", "role": "operator", "role_name": "运营", "property_ids": [pid],
        "totp": False, "locked": False, "locked_until": None, "disabled": False, "last_login_at": None,
        "created_at": listed[operator.email]["created_at"]}
    assert listed[me.email]["role"] == "owner" and listed[me.email]["property_ids"] == []
    assert listed[me.email]["last_login_at"] is not None  # this test logged in
    page = owner.get("/company/users").get_data(as_text=True)
    assert "李运营" in page and "从未登录" in page and "全部物业" in page

    # a new viewer with a random password, shown once
    email = f"{uid('u')}@example.com"
    r = owner.post("/company/users/new", data={
        "email": f"  {email.upper()} ", "name": "赵只读", "role": "viewer", "property_ids": [pid],
        "password_mode": "random", "csrf_token": token(owner, "/company/users/new")})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert len(password) == 16
    newcomer = app.test_client()
    assert admins.login(newcomer, email, password).status_code == 302
    assert newcomer.get(f"/p/{pid}/rooms").status_code == 200
    assert newcomer.get("/company/users").status_code == 403
    [rec] = [x for x in records(company_partition(co), "admin_created") if x.target == email]
    assert rec.actor_id == me.email and rec.role == "owner"
    assert rec.after == {"role": "viewer", "name": "赵只读", "property_ids": [pid]}

    # a finance user with a password set by the owner
    email2 = f"{uid('u')}@example.com"
    r = owner.post("/admin/api/company/users", json={"email": email2, "name": "钱财务", "role": "finance",
                                                     "property_ids": [pid], "password": "Finance-pass-77"},
                   headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 201 and "password" not in r.get_json()
    assert r.get_json()["user"]["role"] == "finance"
    assert admins.login(app.test_client(), email2, "Finance-pass-77").status_code == 302
    r = owner.post("/admin/api/company/users", json={"email": f"{uid('u')}@example.com", "name": "孙", "role": "owner"},
                   headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 201 and len(r.get_json()["password"]) == 16 and r.get_json()["user"]["property_ids"] == []


@pytest.mark.parametrize("fields, status, message", [
    ({"email": "bad login"}, 422, "登录名只能包含字母、数字和 _ . : @ -，且不超过 64 个字符"),
    ({"name": ""}, 422, "姓名不能为空且不超过 40 个字符"),
    ({"role": "boss"}, 422, "角色必须是 owner、operator、finance 或 viewer 之一"),
    ({"password_mode": "set", "password": "short"}, 422, "新密码至少 10 个字符"),
    ({"password_mode": "set", "password": ""}, 422, "请填写初始密码，或选择随机生成"),
    ({"property_ids": ["p-of-nobody"]}, 404, "物业不存在"),
])
def test_bad_new_user_is_refused_and_nothing_is_created(app, world, co, fields, status, message):
    owner, _ = client_of(app, world, co)
    email = f"{uid('u')}@example.com"
    form = {"email": email, "name": "新用户", "role": "operator", "property_ids": [world.property_id],
            "password_mode": "random", **fields, "csrf_token": token(owner, "/company/users/new")}
    r = owner.post("/company/users/new", data=form)
    assert r.status_code == status
    assert message in r.get_data(as_text=True)
    assert astore.get_user(email) is None
    assert [x for x in records(company_partition(co), "admin_created") if x.target == email] == []


def test_duplicate_login_is_refused(app, world, co):
    owner, _ = client_of(app, world, co)
    taken = admins.make_admin(world.property_id, role="viewer", company_id=co)
    r = owner.post("/admin/api/company/users", json={"email": taken.email, "name": "重复", "role": "operator"},
                   headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 409 and r.get_json()["error"]["message"] == "该登录名已存在"
    assert astore.get_user(taken.email).role == "viewer"
    r = owner.post("/admin/api/company/users", json={"email": "x@example.com", "name": "多余", "role": "viewer",
                                                     "admin": True},
                   headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "field_unknown"


def test_owner_changes_role_and_properties(app, world, co):
    pid = world.property_id
    second = World()
    admins.make_admin(second.property_id, company_id=co)  # the company also holds a second property
    owner, me = client_of(app, world, co)
    op = admins.make_admin(pid, role="operator", company_id=co, name="李运营")
    op_client = app.test_client()
    admins.logged_in(op_client, op)
    assert op_client.get(f"/p/{second.property_id}/rooms").status_code == 404
    r = owner.post(f"/company/users/{op.email}/edit", data={
        "name": "李财务", "role": "finance", "property_ids": [pid, second.property_id],
        "csrf_token": token(owner, f"/company/users/{op.email}/edit")})
    assert r.status_code == 302
    u = astore.get_user(op.email)
    assert (u.name, u.role, u.property_ids) == ("李财务", "finance", (pid, second.property_id))
    assert op_client.get(f"/p/{second.property_id}/rooms").status_code == 200  # sees the new grant at once
    [rec] = [x for x in records(company_partition(co), "admin_updated") if x.target == op.email]
    assert rec.actor_id == me.email
    assert rec.before == {"name": "李运营", "role": "operator", "property_ids": [pid], "disabled": False}
    assert rec.after == {"name": "李财务", "role": "finance", "property_ids": [pid, second.property_id],
                         "disabled": False}
    # bad edits: 422 / 400, nothing changed
    r = owner.post(f"/company/users/{op.email}/edit", data={
        "name": "李财务", "role": "root", "csrf_token": token(owner, f"/company/users/{op.email}/edit")})
    assert r.status_code == 422 and "角色必须是" in r.get_data(as_text=True)
    r = owner.put(f"/admin/api/company/users/{op.email}", json={"property_ids": "all"},
                  headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "property_ids_invalid"
    r = owner.put(f"/admin/api/company/users/{op.email}", json={"role": "viewer", "property_ids": [World().property_id]},
                  headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 404
    assert astore.get_user(op.email).role == "finance"
    # JSON: to viewer of one property
    r = owner.put(f"/admin/api/company/users/{op.email}", json={"role": "viewer", "property_ids": [pid]},
                  headers={"X-CSRFToken": token(owner, "/company/users")})
    assert r.status_code == 200 and (r.get_json()["role"], r.get_json()["property_ids"]) == ("viewer", [pid])
    assert op_client.get(f"/p/{second.property_id}/rooms").status_code == 404


def test_the_last_owner_cannot_demote_or_disable_themselves(app, world, co):
    owner, me = client_of(app, world, co)
    tok = token(owner, "/company/users")
    r = owner.post(f"/company/users/{me.email}/edit", data={"name": me.name, "role": "operator",
                                                           "property_ids": [world.property_id], "csrf_token": tok})
    assert r.status_code == 422 and LAST_OWNER in r.get_data(as_text=True)
    r = owner.post(f"/company/users/{me.email}/disable", data={"csrf_token": tok})
    assert r.status_code == 422 and LAST_OWNER in r.get_data(as_text=True)
    r = owner.put(f"/admin/api/company/users/{me.email}", json={"role": "viewer"}, headers={"X-CSRFToken": tok})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "last_owner"
    u = astore.get_user(me.email)
    assert (u.role, u.disabled) == ("owner", False)
    assert records(company_partition(co), "admin_updated") == []
    assert records(company_partition(co), "admin_disabled") == []

    # with a second owner: disabled, it does not count; enabled, the first may step down
    b = admins.make_admin(world.property_id, company_id=co, name="第二所有者")
    r = owner.post(f"/admin/api/company/users/{b.email}/disable", headers={"X-CSRFToken": tok})
    assert r.status_code == 200 and r.get_json()["disabled"] is True
    r = owner.put(f"/admin/api/company/users/{me.email}", json={"role": "viewer"}, headers={"X-CSRFToken": tok})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "last_owner"
    r = owner.post(f"/admin/api/company/users/{b.email}/enable", headers={"X-CSRFToken": tok})
    assert r.status_code == 200 and r.get_json()["disabled"] is False
    r = owner.put(f"/admin/api/company/users/{me.email}", json={"role": "operator", "property_ids": [world.property_id]},
                  headers={"X-CSRFToken": tok})
    assert r.status_code == 200 and r.get_json()["role"] == "operator"
    assert owner.get("/company/users").status_code == 403  # no longer an owner, at once
    [rec] = records(company_partition(co), "admin_updated")
    assert rec.before["role"] == "owner" and rec.after["role"] == "operator"


def test_disable_ends_sessions_and_enable_lets_them_back(app, world, co):
    owner, me = client_of(app, world, co)
    op = admins.make_admin(world.property_id, role="operator", company_id=co)
    op_client = app.test_client()
    admins.logged_in(op_client, op)
    assert op_client.get(f"/p/{world.property_id}/rooms").status_code == 200
    r = owner.post(f"/company/users/{op.email}/disable", data={"csrf_token": token(owner, "/company/users")})
    assert r.status_code == 302
    r = op_client.get(f"/p/{world.property_id}/rooms")
    assert r.status_code == 302 and "/login" in r.headers["Location"]  # the session ended at once
    assert admins.login(app.test_client(), op.email, op.password).status_code == 401
    row = users_json(owner)[op.email]
    assert row["disabled"] is True
    assert "已停用" in owner.get("/company/users").get_data(as_text=True)
    [rec] = records(company_partition(co), "admin_disabled")
    assert (rec.target, rec.before["disabled"], rec.after["disabled"]) == (op.email, False, True)
    r = owner.post(f"/company/users/{op.email}/enable", data={"csrf_token": token(owner, "/company/users")})
    assert r.status_code == 302
    assert admins.login(app.test_client(), op.email, op.password).status_code == 302
    [rec] = records(company_partition(co), "admin_enabled")
    assert (rec.before["disabled"], rec.after["disabled"]) == (True, False)
    # no CSRF token: refused, nothing changed
    r = owner.post(f"/company/users/{op.email}/disable", data={})
    assert r.status_code == 400 and astore.get_user(op.email).disabled is False


def test_reset_password_ends_sessions_and_lifts_the_lock(app, world, co):
    owner, me = client_of(app, world, co)
    op = admins.make_admin(world.property_id, role="operator", company_id=co)
    op_client = app.test_client()
    admins.logged_in(op_client, op)
    for _ in range(5):
        assert admins.login(app.test_client(), op.email, "Wrong-password-1").status_code == 401
    assert users_json(owner)[op.email]["locked"] is True
    assert "已锁定" in owner.get("/company/users").get_data(as_text=True)
    r = owner.post(f"/company/users/{op.email}/password", data={"password": "short",
                                                                "csrf_token": token(owner, "/company/users")})
    assert r.status_code == 422 and "新密码至少 10 个字符" in r.get_data(as_text=True)
    assert astore.get_user(op.email).locked_until is not None
    r = owner.post(f"/company/users/{op.email}/password", data={"password": "",
                                                                "csrf_token": token(owner, "/company/users")})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert op_client.get(f"/p/{world.property_id}/rooms").status_code == 302  # the old session ended
    assert admins.login(app.test_client(), op.email, op.password).status_code == 401  # the old password is gone
    assert admins.login(app.test_client(), op.email, password).status_code == 302  # not locked any more
    [rec] = records(company_partition(co), "password_reset")
    assert rec.target == op.email and rec.before == {"locked": True, "sessions": 1}
    assert rec.after == {"locked": False, "sessions": 0, "generated": True}
    assert password not in str(rec.after) and password not in str(rec.before)
    # set by the owner through the API; one's own password is changed on 修改密码
    tok = token(owner, "/company/users")
    r = owner.post(f"/admin/api/company/users/{op.email}/password", json={"password": "Another-pass-42"},
                   headers={"X-CSRFToken": tok})
    assert r.status_code == 200 and r.get_json() == {"email": op.email}
    assert admins.login(app.test_client(), op.email, "Another-pass-42").status_code == 302
    r = owner.post(f"/admin/api/company/users/{me.email}/password", json={}, headers={"X-CSRFToken": tok})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "own_password"
    assert admins.login(app.test_client(), me.email, me.password).status_code == 302


def test_openapi_lists_the_new_endpoints(app, world, co):
    owner, _ = client_of(app, world, co)
    doc = build_document(app)
    validate(doc)
    served = owner.get("/admin/api/openapi.json").get_json()
    for path, methods in {"/admin/api/properties/{property_id}/settings/protection": ("get", "put"),
                          "/admin/api/company/users": ("get", "post"),
                          "/admin/api/company/users/{login}": ("get", "put"),
                          "/admin/api/company/users/{login}/password": ("post",),
                          "/admin/api/company/users/{login}/disable": ("post",),
                          "/admin/api/company/users/{login}/enable": ("post",)}.items():
        for m in methods:
            assert served["paths"][path][m]["summary"], (path, m)
    put = served["paths"]["/admin/api/properties/{property_id}/settings/protection"]["put"]
    schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["grace_minutes"]["maximum"] == 1440
