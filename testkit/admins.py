"""Console admins for tests and benchmarks: make a company's admin and log a Flask test
client in through the real login form (CSRF token included), as a browser would.

    who = admins.make_admin(world.property_id, role="viewer")
    admins.login(client, who.email, who.password)          # the client now holds a session
    client.post(url, data={..., "csrf_token": admins.csrf_token(client)})
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from testkit.builders import uid

PASSWORD = "Test-password-2026!"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"|name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class TestAdmin:
    email: str
    password: str
    company_id: str
    role: str
    name: str


def make_admin(*property_ids: str, role: str = "owner", company_id: str | None = None, email: str | None = None,
               name: str = "测试管理员", password: str = PASSWORD, clock=None) -> TestAdmin:
    """An admin of `company_id` (a new company if None) that holds `property_ids`; an
    owner sees them all, another role is granted them."""
    from core.services.admin_auth import AdminAuth

    auth = AdminAuth(clock=clock) if clock else AdminAuth()
    company_id = company_id or uid("co")
    auth.ensure_company(company_id, "测试物业公司")
    for pid in property_ids:
        auth.add_property(company_id, pid)
    email = email or f"{uid('admin')}@example.com"
    auth.create_admin(company_id, email, name, role, password, tuple(property_ids))
    return TestAdmin(email, password, company_id, role, name)


def _text(response) -> str:
    return response.get_data(as_text=True) if hasattr(response, "get_data") else response.text


def _is_requests(client) -> bool:
    return hasattr(client, "mount")  # a requests.Session (against a live server) rather than a Flask test client


def csrf_token(client, path: str = "/login", base: str = "") -> str:
    """The CSRF token of the client's session, read from a page's form or meta tag.
    `base`: the server's URL when `client` is a requests.Session."""
    m = _TOKEN.search(_text(client.get(base + path)))
    if not m:
        raise AssertionError(f"no CSRF token on {path}")
    return m.group(1) or m.group(2)


def login(client, email: str, password: str = PASSWORD, code: str = "", next_url: str = "", base: str = ""):
    """Post the login form (with its CSRF token); returns the response (302 on success).
    `client`: a Flask test client, or a requests.Session with `base` the server's URL."""
    token = csrf_token(client, "/login", base)
    data = {"email": email, "password": password, "code": code, "csrf_token": token}
    if next_url:
        data["next"] = next_url
    if _is_requests(client):
        return client.post(base + "/login", data=data, allow_redirects=False, timeout=30)
    return client.post("/login", data=data)


def logged_in(client, admin: TestAdmin, code: str = "", base: str = ""):
    """Log in and insist it worked (the client is then that admin's)."""
    r = login(client, admin.email, admin.password, code, base=base)
    if r.status_code != 302:
        raise AssertionError(f"login of {admin.email} failed: {r.status_code} {_text(r)[:300]}")
    return client
