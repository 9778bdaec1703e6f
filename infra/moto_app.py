"""The AWS API emulator process: moto's server app bound to one address.

One change to moto: DynamoDB requests are served one at a time. moto's threaded server
runs a TransactWriteItems' condition checks and writes without a lock, so two
concurrent transactions could both pass their conditions — real DynamoDB never lets
that happen, and the ledger's exactness tests would be testing the emulator. SQS long
polls and other services stay concurrent.

A second change, for speed only: moto backs up every table a transaction touches with a
deep copy of the whole table (so each transaction costs time proportional to the table
size — 12 ms per posting on an empty ledger, 56 ms after a thousand entries). Here a
transaction backs up only the items it names and puts exactly those back on
cancellation, which is what the deep copy was for.
"""

from __future__ import annotations

import argparse
import copy as _copy
import json
import threading
import types

from moto.dynamodb import models as ddb_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import (  # noqa: F401  (registers backends)
    ThreadedMotoServer,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple

_dynamodb_lock = threading.Lock()
_original_transact = ddb_models.DynamoDBBackend.transact_write_items
_cheap_copy = types.SimpleNamespace(
    deepcopy=lambda obj, *a: obj if isinstance(obj, Table) else _copy.deepcopy(obj, *a)
)


def _item_key(table: Table, op: dict) -> tuple:
    key = op.get("Key") or op.get("Item") or {}
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _transact_backing_up_items(self, transact_items):
    saved = []
    for item in transact_items:
        _, op = next(iter(item.items()))
        table = self.tables.get(op.get("TableName"))
        if table is None:
            continue
        try:
            hash_value, range_value = _item_key(table, op)
        except (KeyError, TypeError):
            continue  # malformed: moto rejects it before writing anything
        before = table.get_item(hash_value, range_value)
        saved.append((table, hash_value, range_value, _copy.deepcopy(before)))
    # Requests are serialised by _dynamodb_lock, so swapping the module's copy is safe.
    ddb_models.copy = _cheap_copy
    try:
        return _original_transact(self, transact_items)
    except Exception:
        for table, hash_value, range_value, before in reversed(saved):
            if range_value is None:
                if before is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = before
            elif before is None:
                table.items.get(hash_value, {}).pop(range_value, None)
            else:
                table.items[hash_value][range_value] = before
        raise
    finally:
        ddb_models.copy = _copy


ddb_models.DynamoDBBackend.transact_write_items = _transact_backing_up_items


class SerialDynamoDB:
    """Also counts DynamoDB requests by operation: GET /__feikong__/stats (for bench/)."""

    def __init__(self, app) -> None:
        self.app = app
        self.counts: dict[str, int] = {}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__feikong__/stats":
            body = json.dumps({"dynamodb": self.counts}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            op = target.split(".", 1)[-1]
            with _dynamodb_lock:
                self.counts[op] = self.counts.get(op, 0) + 1
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
