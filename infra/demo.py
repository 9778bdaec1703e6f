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
from pathlib import Path

from infra.local import DEFAULT_PORT, Emulator, StackError, apply_env, bootstrap, port_in_use


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
    emulator = Emulator(args.aws_port)
    try:
        emulator.start()
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        apply_env(args.aws_port)
        os.environ["FEIKONG_CONSOLE_OPEN"] = "1"
        from infra import seed

        os.environ["FEIKONG_DEFAULT_PROPERTY"] = seed.PROPERTY_ID
        from infra.paystack import PayStack

        paystack = PayStack(time_scale=0.01).start()  # WeChat Pay and WeChat API, emulated
        paystack.apply_env()
        made = bootstrap()
        info = seed.seed()
        from werkzeug.serving import make_server

        from infra import demo_site, demo_wechat
        from infra.scheduler import LocalRunner

        runner = LocalRunner({"UplinkQueue": made["queues"]["uplink"]}).start()
        import shutil

        state = Path(__file__).resolve().parent.parent / ".local" / "demo-bridge"
        shutil.rmtree(state, ignore_errors=True)  # the emulator starts empty, so does the bridge
        site_loop = demo_site.DemoBridge(info, state, poll_seconds=args.read_every)

        from miniprogram_api.app import create_app

        server = make_server("127.0.0.1", args.port, create_app(), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{args.port}/"
        phone = make_server("127.0.0.1", args.wechat_port,
                            demo_wechat.create_app(paystack, url.rstrip("/"), info["property_id"]), threaded=True)
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
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        print("stopping…", flush=True)
        site_loop.shutdown()
        runner.shutdown()
        phone.shutdown()
        paystack.stop()
        for err in runner.errors[-5:]:
            print(f"  (a local function failed: {err})", flush=True)
        server.shutdown()
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        emulator.stop()
    print("demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
