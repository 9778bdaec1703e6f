"""The demo's WeChat users: who can log in to the tenant's H5 pages (/h5/, docs/h5.md) on
the WeChat API emulator's own authorization screen (its /connect/oauth2/authorize page
lists them; a person picks one there, never in our pages).

One user per demo tenant, bound as seeded (openid `demo-openid-<room id>`, nickname the
tenant's name), and one newcomer with no account yet, who binds to the room the demo
watches with the binding code the demo prints (as a roommate would). Payment outside
WeChat goes through the WeChat Pay emulator's WeixinJSBridge shim, which the pages load
because the demo sets FEIKONG_WECHATPAY_JSBRIDGE_URL.
"""

from __future__ import annotations

NEWCOMER = ("demo-openid-newcomer", "新室友 小林")


def users(info: dict) -> dict[str, str]:
    """openid -> nickname of every demo WeChat user (the seeded tenants, then the newcomer)."""
    out = dict(info["wechat_users"])
    out[NEWCOMER[0]] = NEWCOMER[1]
    return out


def configure(api_emulator, info: dict) -> None:
    """Put the demo's WeChat users on the emulator's authorization screen."""
    for openid, nickname in users(info).items():
        api_emulator.add_oauth_user(openid, nickname)


def binding_code(info: dict) -> str:
    """A binding code for the watched room's account, as the console would issue it
    (valid 24 hours), shown as the tenant types it (XXXX-XXXX)."""
    from core.domain.room_actions import show_binding_code
    from core.services import bindings

    return show_binding_code(bindings.issue(info["property_id"], info["crossing"]["account"], "演示").code)


def jsbridge_url(pay_emulator_url: str) -> str:
    """The WeChat Pay emulator's WeixinJSBridge shim (infra/fakes/wechatpay_emulator.py)."""
    return pay_emulator_url.rstrip("/") + "/emulator/jsbridge.js"


def oauth_login(app_url: str, openid: str, next_path: str = "/h5/", session=None) -> dict:
    """What a phone's browser does to log in to the H5 pages as a demo WeChat user, over
    HTTP (for scripts and tests): /h5/login sends it to the emulator's authorization
    screen, choosing the user there comes back to /h5/oauth/callback (the state cookie
    checked), whose script posts the code to /api/v1/login/oauth. Returns the tokens, plus
    "screen": the authorization page's HTML."""
    from urllib.parse import parse_qs, urlsplit

    import requests

    s = session or requests.Session()
    start = s.get(f"{app_url}/h5/login", params={"next": next_path}, allow_redirects=False, timeout=10)
    if start.status_code != 302:
        raise RuntimeError(f"/h5/login answered {start.status_code}: {start.text[:200]}")
    authorize = start.headers["Location"]
    screen = s.get(authorize, timeout=10)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    parts = urlsplit(authorize)
    chosen = s.post(f"{parts.scheme}://{parts.netloc}/connect/oauth2/authorize/confirm", allow_redirects=False,
                    data={**{k: query.get(k, "") for k in ("appid", "redirect_uri", "scope", "state")},
                          "openid": openid}, timeout=10)
    if chosen.status_code != 302:
        raise RuntimeError(f"the authorization screen refused {openid}: {chosen.status_code}")
    back = chosen.headers["Location"]
    page = s.get(back, timeout=10)
    if page.status_code != 200:
        raise RuntimeError(f"the callback page answered {page.status_code}")
    got = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    r = s.post(f"{app_url}/api/v1/login/oauth", json={"code": got["code"], "state": got["state"]}, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"/api/v1/login/oauth answered {r.status_code}: {r.text[:200]}")
    return {**r.json(), "screen": screen.text}
