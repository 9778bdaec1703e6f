"""`make demo` end to end: start the whole local product, use it over HTTP, Ctrl-C it.

The demo runs in its own process group (start_new_session) and every test kills that
group, and the AWS emulator the demo started, on any exit: a failed or timed-out test
never leaves a demo running. The demo is started the way a background job of a
non-interactive shell starts it (`make test` from a script): with SIGINT ignored."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from infra.local.stack import free_port, port_in_use

ROOT = Path(__file__).resolve().parents[2]


def _ignore_sigint() -> None:  # runs in the child before exec: what `make` inherits from `cmd &`
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Demo:
    def __init__(self) -> None:
        self.web, self.aws = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infra.demo", "--port", str(self.web), "--aws-port", str(self.aws),
             "--read-every", "2"],  # 29 meters read each 1 s outran the local consumer
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, preexec_fn=_ignore_sigint,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.emulator_pid: int | None = None

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        """Output up to the line holding text (never blocks past timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.out.append(line)
            m = re.search(r"AWS emulator: \S+ \(pid (\d+)\)", line)
            if m:
                self.emulator_pid = int(m.group(1))
            if text in line:
                return "".join(self.out)
        raise AssertionError(f"no {text!r} within {timeout:.0f} s:\n" + "".join(self.out))

    def stop(self, sig: int, timeout: float = 60) -> str:
        """Send sig to the demo as a terminal's Ctrl-C would; its output until it exits."""
        self.proc.send_signal(sig)
        self.proc.wait(timeout)
        rest = []
        while (line := self.lines.get(timeout=10)) is not None:
            rest.append(line)
        return "".join(rest)

    def kill(self) -> None:
        """Whatever happened: the demo's whole process group, then its emulator's."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.emulator_pid is not None:
            try:
                os.killpg(self.emulator_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the demo stopped it, as it should


@pytest.fixture
def demo():
    d = Demo()
    try:
        yield d
    finally:
        d.kill()


def test_demo_starts_serves_and_stops_cleanly(demo):
    text = demo.wait_for("Console login:", 120)  # the last lines: the console and its demo login
    web, aws = demo.web, demo.aws
    assert f"Console:       http://127.0.0.1:{web}/login" in text, text
    assert f"Tenant pages (WeChat H5):     http://127.0.0.1:{web}/h5/" in text, text
    assert "Seeded 20 rooms" in text
    base = f"http://127.0.0.1:{web}"
    assert requests.get(f"{base}/health", timeout=10).json()["status"] == "ok"
    login = re.search(r"Console login: (\S+)  password: (\S+)", text)
    assert requests.get(f"{base}/admin/api/properties/demo-park/rooms", timeout=10).status_code == 401
    from testkit import admins

    browser = admins.logged_in(requests.Session(), admins.TestAdmin(login[1], login[2], "", "owner", ""), base=base)
    page = browser.get(f"{base}/", timeout=10)  # the room monitor of the admin's property
    assert page.status_code == 200
    assert "翠湖科技园" in page.text and "A 栋（公寓）" in page.text and "B 栋（商铺）" in page.text

    def tiles() -> list[dict]:
        view = browser.get(f"{base}/admin/api/properties/demo-park/rooms", timeout=10).json()
        return [t for b in view["buildings"] for f in b["floors"] for t in f["rooms"]]

    first = tiles()
    assert len({t["room_id"] for t in first}) == 20  # every room, occupied or empty
    assert any(t["state"] == "vacant" for t in first) and any(t["balance_fen"] and t["balance_fen"] < 0 for t in first)
    # the room the banner names crosses its cut-off line as its meter turns, and the site trips it
    room = re.search(r"Watch room (\S+):", text)[1]
    start = next(t for t in first if t["room"] == room)
    assert start["state"] != "cut" and start["balance_fen"] == -2000 + 20, start
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = next(t for t in tiles() if t["room"] == room)
        if now["state"] == "cut" and now["relay"] == "open":
            break
        time.sleep(2)
    assert now["state"] == "cut" and now["relay"] == "open" and now["balance_fen"] < -2000, now
    assert any(t["balance_fen"] is not None and t["balance_fen"] < f["balance_fen"]
               for t, f in zip(tiles(), first, strict=True) if f["balance_fen"] is not None)  # the others turn too
    assert "已断电" in browser.get(f"{base}/", timeout=10).text
    # its tenant logs in to the H5 pages on the WeChat emulator's screen and pays 50 yuan
    # through what the recharge page does: order, the WeChat Pay emulator's JSAPI shim, the
    # signed notification; the page's progress chain runs until the relay is closed
    from infra.demo.wechat import oauth_login

    cut_account = now["account_id"]
    openid = re.search(r"log in to the tenant pages as (\S+), pay", text)[1]
    tokens = oauth_login(base, openid)
    auth = {"Authorization": f"Bearer {tokens['token']}"}
    mine = requests.get(f"{base}/api/v1/accounts", headers=auth, timeout=10).json()["accounts"]
    assert [(a["account_id"], a["supply"]["state"]) for a in mine] == [(cut_account, "cut")]
    page = requests.get(f"{base}/h5/recharge", timeout=10).text
    shim = re.search(r'<script src="(http://127\.0\.0\.1:\d+)/emulator/jsbridge\.js"></script>', page)
    assert shim, page  # the demo's pages pay through the WeChat Pay emulator's shim
    order = requests.post(f"{base}/api/v1/recharges", json={"account_id": cut_account, "amount": 5000}, headers=auth,
                          timeout=10)
    assert order.status_code == 201, order.text
    no = order.json()["out_trade_no"]
    paid = requests.post(f"{shim[1]}/emulator/jsapi/pay", json=order.json()["pay_params"], timeout=10)
    assert paid.status_code == 200 and paid.json()["err_msg"] == "get_brand_wcpay_request:ok", paid.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = requests.get(f"{base}/api/v1/recharges/{no}/progress", headers=auth, timeout=10).json()
        if progress["state"] == "restored":
            break
        time.sleep(1)
    assert progress["state"] == "restored" and all(s["done"] for s in progress["steps"]), progress
    back = next(t for t in tiles() if t["room"] == room)
    assert back["relay"] == "closed" and back["state"] != "cut", back  # the meter read back its relay closed
    assert back["balance_fen"] > start["balance_fen"] + 2000  # 50.00 credited, less the minutes it ran since
    # the tenant was told by the official account: the cut, the payment and the restore, on the
    # WeChat API emulator's page the banner names (the stream -> router -> sender, docs/notifications.md)
    wechat_page = re.search(r"Messages sent \(WeChat\):\s+(\S+)", text)[1]
    wanted = ("supply_cut", "payment_received", "supply_restored")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        told = [m["template_id"] for m in requests.get(f"{wechat_page}.json", timeout=10).json()["messages"]
                if m["touser"] == openid and m["kind"] == "template"]
        if all(any(k in t for t in told) for k in wanted):
            break
        time.sleep(1)
    assert all(any(k in t for t in told) for k in wanted), told
    sms_page = re.search(r"Messages sent \(SMS\):\s+(\S+)", text)[1]
    assert requests.get(f"{sms_page}.json", timeout=10).json()["messages"]  # and by SMS
    assert requests.get(sms_page, timeout=10).status_code == 200
    # what the recharge page might send is refused in words the tenant reads, and nothing is ordered
    for body, status in [({"account_id": cut_account, "amount": "五十"}, 400),
                         ({"account_id": cut_account, "amount": 0}, 400),
                         ({"amount": 5000}, 400),
                         ({"account_id": "acct-A101", "amount": 5000}, 404)]:  # another tenant's account
        r = requests.post(f"{base}/api/v1/recharges", json=body, headers=auth, timeout=10)
        assert r.status_code == status and re.search(r"[\u4e00-\u9fff]", r.json()["error"]["message"]), r.text
    orders = requests.get(f"{base}/api/v1/accounts/{cut_account}/orders", headers=auth, timeout=10).json()["orders"]
    assert [o["out_trade_no"] for o in orders] == [no]
    # started with SIGINT ignored, the demo still stops on Ctrl-C, cleanly
    rest = demo.stop(signal.SIGINT)
    assert demo.proc.returncode == 0, "".join(demo.out) + rest
    assert "demo stopped" in rest
    assert not port_in_use(web) and not port_in_use(aws)


def test_demo_stops_on_sigterm_while_starting_and_leaves_nothing_running(demo):
    """A stop that arrives mid-start (here: as soon as the emulator is up) undoes what
    was started so far: the emulator is gone and the ports are free."""
    demo.wait_for("AWS emulator:", 120)  # printed as soon as it answers, long before the banner
    assert demo.emulator_pid and port_in_use(demo.aws)
    rest = demo.stop(signal.SIGTERM)
    assert demo.proc.returncode == 0, "".join(demo.out) + rest
    assert "demo stopped" in rest
    assert not port_in_use(demo.aws) and not port_in_use(demo.web)
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.emulator_pid, 0)  # the emulator's process group is gone
