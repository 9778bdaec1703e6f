"""`make demo`: the whole product locally on its embedded defaults.

Starts the AWS emulator, creates tables and queues, seeds the demo property and its
owner's console login, serves the Flask app on 127.0.0.1:8000 and prints where to open
it: the tenant's H5 pages (/h5/, logged in on the WeChat API emulator's authorization
screen as a demo tenant, paying through the WeChat Pay emulator's WeixinJSBridge shim;
infra/demo/wechat.py, docs/h5.md), the console URL and the demo login last. Ctrl-C stops
everything it started.

The terminal gets only what a person reads (where to open the product, the login, errors,
stopping); the functions' JSON logs, metrics and the web servers' request lines go to
`.local/demo.log` (its path is printed with the banner).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from infra.local.stack import DEFAULT_PORT, STATE, Emulator, StackError, apply_env, bootstrap, port_in_use


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FEIKONG_DEMO_PORT", "8000")))
    parser.add_argument("--aws-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--read-every", type=float, default=float(os.environ.get("FEIKONG_DEMO_READ_SECONDS", "10")),
                        help="seconds between the simulated meters' readings")
    args = parser.parse_args(argv)

    if port_in_use(args.port):
        print(f"error: port {args.port} on 127.0.0.1 is already in use; "
              "stop that program or run FEIKONG_DEMO_PORT=<port> make demo", file=sys.stderr)
        return 2
    # Our own handlers, whatever disposition was inherited: a process started with SIGINT
    # ignored (a background job of a non-interactive shell, e.g. under `make test`) gets
    # no KeyboardInterrupt from Python and would ignore Ctrl-C for ever.
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    cleanups: list[tuple[str, Callable[[], object]]] = []  # what was started, undone last-first
    code = 0
    _logs_to_file()
    try:
        code = _run(args, cleanups)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, while starting or while running
        pass
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    finally:
        for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        say("stopping…")
        for name, undo in reversed(cleanups):
            try:
                undo()
            except Exception as e:  # noqa: BLE001 - stop the rest whatever one part does
                say(f"  ({name} did not stop cleanly: {e})")
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
    say("demo stopped")
    return code


TERMINAL = sys.stdout  # the person's; sys.stdout itself becomes the log file
LOG_FILE = STATE / "demo.log"


def say(text: str) -> None:
    print(text, file=TERMINAL, flush=True)


def _logs_to_file() -> None:
    """Everything that logs (powertools' JSON lines and metrics print to sys.stdout, werkzeug
    logs through logging) writes to .local/demo.log from here on; say() reaches the terminal."""
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    log = open(LOG_FILE, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the process's life
    sys.stdout = log
    logging.basicConfig(stream=log, level=logging.INFO, force=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, cleanups: list) -> int:
    emulator = Emulator(args.aws_port)
    cleanups.append(("AWS emulator", emulator.stop))  # registered first: stop() is safe before start()
    emulator.start()
    say(f"AWS emulator: {emulator.url} (pid {emulator.proc.pid})")
    apply_env(args.aws_port)
    from infra.demo import seed

    os.environ["FEIKONG_DEFAULT_PROPERTY"] = seed.PROPERTY_ID
    from infra.local.paystack import PayStack

    paystack = PayStack(time_scale=0.01)  # WeChat Pay and WeChat API, emulated
    cleanups.append(("payment emulators", paystack.stop))
    paystack.start()
    from infra.demo import wechat

    # the H5 pages pay through the WeChat Pay emulator's WeixinJSBridge shim (never on prod)
    os.environ["FEIKONG_WECHATPAY_JSBRIDGE_URL"] = wechat.jsbridge_url(paystack.pay.url)
    paystack.apply_env()  # also forgets the settings read so far
    made = bootstrap()
    from infra.local.channelstack import ChannelStack

    channels = ChannelStack(paystack.api)  # the SMS emulator; WeChat messages go to the WeChat API emulator
    cleanups.append(("channel emulators", channels.stop))
    channels.start().apply_env()
    info = seed.seed()
    login = seed.seed_admin()
    _notification_wiring(info)
    wechat.configure(paystack.api, info)  # the demo tenants on the emulator's WeChat login screen
    code = wechat.binding_code(info)
    from werkzeug.serving import make_server

    from infra.demo import site
    from infra.local.scheduler import LocalRunner

    # the notification router reads the events table's stream, the sender the notifications queue
    runner = LocalRunner({"UplinkQueue": made["queues"]["uplink"], "LedgerAuditQueue": made["queues"]["ledger-audit"],
                          "NotificationsQueue": made["queues"]["notifications"]})
    cleanups.append(("local functions", lambda: _report_and_stop(runner)))
    runner.start()
    from core.services.finance import Finance

    # the journal (财务 → 订单流水) of what was seeded before the stream consumer started at LATEST
    Finance().backfill(info["property_id"])
    from core.services import reports

    # the reports' rollups (报表) of the seeded accounts' summaries, for the same reason
    reports.service().backfill(info["property_id"])
    import shutil

    state = STATE / "demo-bridge"
    shutil.rmtree(state, ignore_errors=True)  # the emulator starts empty, so does the bridge
    site_loop = site.DemoBridge(info, state, poll_seconds=args.read_every)
    cleanups.append(("bridge and simulated meters", site_loop.shutdown))

    from miniprogram_api.app import create_app

    server = make_server("127.0.0.1", args.port, create_app(), threaded=True)
    cleanups.append(("web app", lambda: (server.shutdown(), server.server_close())))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{args.port}/"
    say(
        "\n费控 Feikong demo is running\n"
        f"  Health:                       {url}health\n"
        f"  Room monitor (after login):   {url}p/{info['property_id']}/rooms\n"
        f"  Admin API (OpenAPI):          {url}admin/api/openapi.json\n"
        f"  Tenant pages (WeChat H5):     {url}h5/  (open at phone size; log in on the WeChat emulator's "
        "screen as a demo tenant)\n"
        f"  AWS emulator:                 {emulator.url}\n"
        f"  WeChat Pay emulator:          {paystack.pay.url}  (notifications to {paystack.notify_url})\n"
        f"  Messages sent (WeChat):       {channels.pages()['wechat']}\n"
        f"  Messages sent (SMS):          {channels.pages()['sms']}\n"
        f"  Seeded {info['rooms']} rooms, {len(info['accounts'])} accounts; meters (simulated, real Modbus) are polled by the bridge every "
        f"{args.read_every:g} s, balances move as they turn.\n"
        f"  Watch room {info['crossing']['room']}: 0.20 yuan above its cut-off line, its meter takes it across "
        f"within a minute and the site trips it; log in to the tenant pages as {info['crossing']['openid']}, pay, "
        "and watch it restored.\n"
        f"  Binding code for room {info['crossing']['room']}: {code}  (log in as {wechat.NEWCOMER[1]} and bind as "
        "its roommate)\n"
        "Press Ctrl-C to stop.\n"
        "\n"
        f"  Console:       {url}login\n"
        f"  Logs:          {LOG_FILE}\n"
        f"  Console login: {login['login']}  password: {login['password']}",
    )
    while True:
        time.sleep(3600)  # until a signal raises KeyboardInterrupt


def _notification_wiring(info: dict) -> None:
    """Room B-201's tenant (the crossing room) is told by the official account and SMS, so its
    low balance, cut, payment and restore show on the emulators' pages; the property's admins
    get the admin messages by SMS (docs/notifications.md)."""
    from core.domain.alarm_prefs import AlarmPrefs
    from core.domain.notifications import ADMIN, KINDS
    from core.store import notify_recipients, tenant_money

    crossing = info["crossing"]
    tenant_money.put_prefs(crossing["openid"], crossing["account"],
                           AlarmPrefs(None, ("subscribe", "template", "sms")), "demo")
    for key, kind in KINDS.items():
        if kind.audience == ADMIN:  # version 0: only where nobody set recipients yet
            notify_recipients.set_recipients(info["property_id"], key, [("sms", "+8613900000000")], 0, "demo", "demo")


def _report_and_stop(runner) -> None:
    runner.shutdown()
    for err in runner.errors[-5:]:
        say(f"  (a local function failed: {err})")


if __name__ == "__main__":
    sys.exit(main())
