"""`make demo` end to end: start the whole local product, use it over HTTP, Ctrl-C it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from infra.local import free_port, port_in_use

ROOT = Path(__file__).resolve().parents[2]


def test_demo_starts_serves_and_stops_cleanly():
    web, aws, phone = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.demo", "--port", str(web), "--aws-port", str(aws), "--read-every", "1",
         "--wechat-port", str(phone)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    out = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(out)
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
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(out) + rest
    assert "demo stopped" in rest
    assert not port_in_use(web) and not port_in_use(aws)
