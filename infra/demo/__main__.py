"""`make demo`: the whole product locally on its embedded defaults.

Starts the AWS emulator, creates tables and queues, seeds the demo property, serves the
Flask app on 127.0.0.1:8000 and prints where to open it. Ctrl-C stops everything it
started.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--wechat-port", type=int, default=int(os.environ.get("FEIKONG_DEMO_WECHAT_PORT", "8002")))
    parser.add_argument("--read-every", type=float, default=float(os.environ.get("FEIKONG_DEMO_READ_SECONDS", "10")),
                        help="seconds between the simulated meters' readings")
    args = parser.parse_args(argv)

    for port, var in ((args.port, "FEIKONG_DEMO_PORT"), (args.wechat_port, "FEIKONG_DEMO_WECHAT_PORT")):
        if port_in_use(port):
            print(f"error: port {port} on 127.0.0.1 is already in use; "
                  f"stop that program or run {var}=<port> make demo", file=sys.stderr)
            return 2
    # Our own handlers, whatever disposition was inherited: a process started with SIGINT
    # ignored (a background job of a non-interactive shell, e.g. under `make test`) gets
    # no KeyboardInterrupt from Python and would ignore Ctrl-C for ever.
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    cleanups: list[tuple[str, Callable[[], object]]] = []  # what was started, undone last-first
    code = 0
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
        print("stopping…", flush=True)
        for name, undo in reversed(cleanups):
            try:
                undo()
            except Exception as e:  # noqa: BLE001 - stop the rest whatever one part does
                print(f"  ({name} did not stop cleanly: {e})", flush=True)
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
    print("demo stopped", flush=True)
    return code


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, cleanups: list) -> int:
    emulator = Emulator(args.aws_port)
    cleanups.append(("AWS emulator", emulator.stop))  # registered first: stop() is safe before start()
    emulator.start()
    print(f"AWS emulator: {emulator.url} (pid {emulator.proc.pid})", flush=True)
    apply_env(args.aws_port)
    os.environ["FEIKONG_CONSOLE_OPEN"] = "1"
    from infra.demo import seed

    os.environ["FEIKONG_DEFAULT_PROPERTY"] = seed.PROPERTY_ID
    from infra.local.paystack import PayStack

    paystack = PayStack(time_scale=0.01)  # WeChat Pay and WeChat API, emulated
    cleanups.append(("payment emulators", paystack.stop))
    paystack.start()
    paystack.apply_env()
    made = bootstrap()
    info = seed.seed()
    from werkzeug.serving import make_server

    from infra.demo import site, wechat
    from infra.local.scheduler import LocalRunner

    runner = LocalRunner({"UplinkQueue": made["queues"]["uplink"], "LedgerAuditQueue": made["queues"]["ledger-audit"]})
    cleanups.append(("local functions", lambda: _report_and_stop(runner)))
    runner.start()
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
    phone = make_server("127.0.0.1", args.wechat_port,
                        wechat.create_app(paystack, url.rstrip("/"), info["property_id"]), threaded=True)
    cleanups.append(("tenant phone page", lambda: (phone.shutdown(), phone.server_close())))
    threading.Thread(target=phone.serve_forever, daemon=True).start()
    print(
        "\n费控 Feikong demo is running\n"
        f"  Console (rooms and balances): {url}\n"
        f"  Health:                       {url}health\n"
        f"  Rooms API (building A):       {url}admin/api/properties/{info['property_id']}/buildings/A/rooms\n"
        f"  Pay as a tenant (WeChat Pay): http://127.0.0.1:{args.wechat_port}/\n"
        f"  AWS emulator:                 {emulator.url}\n"
        f"  WeChat Pay emulator:          {paystack.pay.url}  (notifications to {paystack.notify_url})\n"
        f"  Seeded {info['rooms']} rooms, {len(info['accounts'])} accounts; meters (simulated, real Modbus) are polled by the bridge every "
        f"{args.read_every:g} s, balances move as they turn.\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    while True:
        time.sleep(3600)  # until a signal raises KeyboardInterrupt


def _report_and_stop(runner) -> None:
    runner.shutdown()
    for err in runner.errors[-5:]:
        print(f"  (a local function failed: {err})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
