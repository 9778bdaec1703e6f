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
        self.web, self.aws, self.phone = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infra.demo", "--port", str(self.web), "--aws-port", str(self.aws),
             "--read-every", "1", "--wechat-port", str(self.phone)],
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
    text = demo.wait_for("Press Ctrl-C", 120)
    web, aws, phone = demo.web, demo.aws, demo.phone
    assert f"http://127.0.0.1:{web}/" in text, text
    assert "Seeded 20 rooms" in text
    base = f"http://127.0.0.1:{web}"
    assert requests.get(f"{base}/health", timeout=10).json()["status"] == "ok"
    page = requests.get(f"{base}/", timeout=10)
    assert page.status_code == 200
    assert "翠湖科技园" in page.text and "A 栋（公寓）" in page.text and "B 栋（商铺）" in page.text
    assert page.text.count("<tr><td>") == 20 + 0  # one row per room, occupied or empty
    assert "户欠费" in page.text and 'class="num neg"' in page.text  # some balances below zero
    rooms = requests.get(f"{base}/admin/api/properties/demo-park/buildings/B/rooms", timeout=10).json()["rooms"]
    assert len(rooms) == 8
    # the meters turn: readings travel the uplink queue, get rated and debited, and the
    # tenants beyond their overdraft are cut by TRIP commands the site obeys
    first = {r["room_id"]: r["balance_fen"] for r in rooms}
    moved, cut = False, False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (moved and cut):
        time.sleep(2)
        now = requests.get(f"{base}/admin/api/properties/demo-park/buildings/B/rooms", timeout=10).json()["rooms"]
        moved = any(r["balance_fen"] < first[r["room_id"]] for r in now)
        cut = any(a["supply"] == "cut" for r in now for a in r["accounts"])
    assert moved and cut
    assert "已断电" in requests.get(f"{base}/", timeout=10).text
    # a tenant whose supply was cut pays 50 yuan through the whole WeChat Pay path
    cut_account = next(a["account_id"] for r in now for a in r["accounts"] if a["supply"] == "cut")
    paid = requests.post(f"http://127.0.0.1:{phone}/pay", data={"account_id": cut_account, "amount": "50.00"},
                         timeout=60)
    assert paid.status_code == 200 and "PAID" in paid.text and "供电：正常" in paid.text
    # the phone page refuses what a person might type, in words they read, and charges nothing
    for form, status, words in [({"account_id": cut_account, "amount": "五十"}, 400, "金额格式无效"),
                                ({"amount": "50.00"}, 400, "请选择要充值的账户"),
                                ({"account_id": "acct-A#x", "amount": "50.00"}, 400, "账户编号格式无效"),
                                ({"account_id": "acct-nobody", "amount": "50.00"}, 404, "账户不存在")]:
        r = requests.post(f"http://127.0.0.1:{phone}/pay", data=form, timeout=10)
        assert (r.status_code, words in r.text) == (status, True), r.text
    # started with SIGINT ignored, the demo still stops on Ctrl-C, cleanly
    rest = demo.stop(signal.SIGINT)
    assert demo.proc.returncode == 0, "".join(demo.out) + rest
    assert "demo stopped" in rest
    assert not port_in_use(web) and not port_in_use(aws) and not port_in_use(phone)


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
