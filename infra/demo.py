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

from infra.local import DEFAULT_PORT, Emulator, StackError, apply_env, bootstrap, port_in_use


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FEIKONG_DEMO_PORT", "8000")))
    parser.add_argument("--aws-port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)

    if port_in_use(args.port):
        print(f"error: port {args.port} on 127.0.0.1 is already in use; "
              f"stop that program or run FEIKONG_DEMO_PORT=<port> make demo", file=sys.stderr)
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
        bootstrap()
        info = seed.seed()
        from werkzeug.serving import make_server

        from miniprogram_api.app import create_app

        server = make_server("127.0.0.1", args.port, create_app(), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{args.port}/"
        print(
            "\n费控 Feikong demo is running\n"
            f"  Console (rooms and balances): {url}\n"
            f"  Health:                       {url}health\n"
            f"  Rooms API (building A):       {url}admin/api/properties/{info['property_id']}/buildings/A/rooms\n"
            f"  AWS emulator:                 {emulator.url}\n"
            f"  Seeded {info['rooms']} rooms, {len(info['accounts'])} accounts.\n"
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
