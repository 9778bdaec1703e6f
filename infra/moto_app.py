"""The AWS API emulator process: moto's server app bound to one address.

One change to moto: DynamoDB requests are served one at a time. moto's threaded server
runs a TransactWriteItems' condition checks and writes without a lock, so two
concurrent transactions could both pass their conditions — real DynamoDB never lets
that happen, and the ledger's exactness tests would be testing the emulator. SQS long
polls and other services stay concurrent.
"""

from __future__ import annotations

import argparse
import threading

from moto.moto_server.threaded_moto_server import (  # noqa: F401  (registers backends)
    ThreadedMotoServer,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple

_dynamodb_lock = threading.Lock()


class SerialDynamoDB:
    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb_lock:
                # Consume the whole response inside the lock.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per request is noise here
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Feikong local AWS emulator (moto)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()
    app = SerialDynamoDB(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, request_handler=QuietHandler)


if __name__ == "__main__":
    main()
