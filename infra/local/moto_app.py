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

A third change makes SQS FIFO long polls see message groups freed during the poll (below).
A fourth: a cancelled transaction leaves no DynamoDB stream records (moto left those of the
writes it made before the failing condition). A fifth, for speed: a Query reads its
partition, not a sorted copy of the whole table (below). A sixth, for speed: SendMessage does
not count the queue's messages (below).

For tests of our retry policy, DynamoDB can be told to fail as AWS does when busy or
failing (TransactionConflict, throttling, 500s, lost answers) at chosen rates: `Faults`.
"""

from __future__ import annotations

import argparse
import copy as _copy
import inspect
import io
import json
import os
import random
import sys
import threading
import time
import types

from moto.dynamodb import models as ddb_models
from moto.dynamodb.comparisons import get_comparison_func
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import (  # noqa: F401  (registers backends)
    ThreadedMotoServer,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs import models as sqs_models
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
    # moto appends a stream record for each write as it goes; a cancelled transaction must
    # leave none (DynamoDB Streams record only committed writes: the notification router reads them)
    streams = {id(t): (t.stream_shard, len(t.stream_shard.items)) for t, *_ in saved if t.stream_shard is not None}
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
        for shard, length in streams.values():
            del shard.items[length:]
        raise
    finally:
        ddb_models.copy = _copy


ddb_models.DynamoDBBackend.transact_write_items = _transact_backing_up_items


# A third change, for SQS FIFO long polls: moto takes the set of message groups in flight
# once, when a ReceiveMessage starts, and spins on it until WaitTimeSeconds end. So a
# long poll that began while a group's message was in flight never returns that group's
# next message, even after the first is deleted; real SQS returns it as soon as it is
# available. (The bridge long-polls for 20 s: a second command for the same meter would
# wait out the whole poll.) Here each pass looks afresh, and an empty pass waits on the
# queue's condition (woken by every new message; rechecked every 50 ms for groups freed
# by a delete) instead of spinning.
_original_receive = sqs_models.SQSBackend.receive_message


def _receive_rechecking_groups(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                               message_attribute_names=None):
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    lock = self.get_queue(queue_name)._messages_lock  # a Condition; add_message notifies it
    while True:
        with lock:  # held across the pass, so a message added after it wakes the wait below
            got = _original_receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            lock.wait(timeout=min(remaining, 0.05))


sqs_models.SQSBackend.receive_message = _receive_rechecking_groups


# A sixth change, for speed only: moto's SendMessage asks the queue for its attributes to
# learn whether it deduplicates by content, and that property counts every message in the
# queue three times (visible, delayed, in flight; a clock read per message): a send costs
# time proportional to the queue's length (27 ms on an empty FIFO queue, 120 ms at 800
# messages). Here SendMessage(Batch) and its checks see only the one attribute they read;
# GetQueueAttributes still counts.
_sending = threading.local()
_original_queue_attributes = sqs_models.Queue.attributes.fget


def _queue_attributes(self):
    if getattr(_sending, "depth", 0):
        return {"ContentBasedDeduplication": str(self.content_based_deduplication).lower()} if self.fifo_queue else {}
    return _original_queue_attributes(self)


def _without_counting(method):
    def wrapper(*args, **kwargs):
        _sending.depth = getattr(_sending, "depth", 0) + 1
        try:
            return method(*args, **kwargs)
        finally:
            _sending.depth -= 1
    return wrapper


sqs_models.Queue.attributes = property(_queue_attributes)
sqs_models.SQSBackend.send_message = _without_counting(sqs_models.SQSBackend.send_message)
sqs_models.SQSBackend.send_message_batch = _without_counting(sqs_models.SQSBackend.send_message_batch)


# A fifth change, for speed only: moto answers every Query by listing and sorting the
# whole table (Table.all_items), then keeping the partition asked for: a Query costs time
# proportional to the table, so a month-end that reads a building's accounts slows down as
# the ledger grows (quadratic over a run; real DynamoDB reads the one partition). Here a
# Query on the table reads only its partition (only the items its range condition keeps),
# and a Query on an index walks the items unsorted (moto sorts the matches by the index's
# keys itself afterwards). Same answers: tests/integration/test_emulator_patches.py checks
# them against a plain model.
_original_query = Table.query
_original_all_items = Table.all_items
_QUERY_ARGS = inspect.signature(_original_query)


def _query_reading_one_partition(self, *args, **kwargs):
    a = _QUERY_ARGS.bind(self, *args, **kwargs).arguments
    conditions = a.get("range_key_conditions") or []
    on_range_key = not conditions or (len(conditions) == 1 and conditions[-1][0] == self.range_key_attr)
    self._feikong_query = (a.get("index_name"), a.get("hash_key"),
                           a.get("range_comparison") if on_range_key else None, a.get("range_objs"))
    try:
        return _original_query(self, *args, **kwargs)
    finally:
        del self._feikong_query


def _items_for_query(self):
    query = self.__dict__.get("_feikong_query")
    if query is None:
        return _original_all_items(self)
    index_name, hash_key, range_comparison, range_objs = query
    if index_name is None and hash_key is not None:
        partition = self.items.get(hash_key)
        if partition is None:
            return []
        if not self.range_key_attr:
            return [partition]
        if not range_comparison:
            return list(partition.values())
        # moto sorts the partition, then tests each item's range key against the condition:
        # testing first leaves only the matches to sort (the same items in the same order)
        compare = get_comparison_func(range_comparison)
        bounds = [o.cast_value for o in range_objs]
        return [i for i in partition.values() if compare(i.range_key.cast_value, *bounds)]
    if not self.range_key_attr:
        return list(self.items.values())
    return [item for partition in self.items.values() for item in partition.values()]


Table.query = _query_reading_one_partition
Table.all_items = _items_for_query


# Fault injection (off unless asked for): DynamoDB answers as AWS does when it is busy or
# failing, at a chosen rate per operation, so tests can see our retry policy at work.
#   conflict  TransactionCanceledException with a TransactionConflict reason for
#             TransactWriteItems/TransactGetItems; TransactionConflictException for
#             PutItem/UpdateItem/DeleteItem (other operations never conflict)
#   throttle  ProvisionedThroughputExceededException or ThrottlingException (and, for
#             transactions, a cancellation with a ThrottlingError reason)
#   error     500 InternalServerError, nothing applied
#   lost      applied, then 500 InternalServerError: the answer of a write that went in is lost
# Set at start with FEIKONG_MOTO_FAULTS, or at runtime: POST /__feikong__/faults (GET shows
# the settings and what was injected, DELETE turns it off). Spec, JSON or compact:
#   {"seed": 7, "conflict": {"TransactWriteItems": 0.2}, "throttle": {"*": 0.1}}
#   conflict=TransactWriteItems:0.2,UpdateItem:0.1;throttle=*:0.1;error=*:0.05;seed=7
# Draws come from one random.Random(seed) under the DynamoDB lock: the same requests in the
# same order meet the same faults.
FAULT_KINDS = ("conflict", "throttle", "error", "lost")
_CONFLICTING = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "TransactGetItems"}
_TRANSACTIONS = {"TransactWriteItems", "TransactGetItems"}
_ERR = "com.amazonaws.dynamodb.v20120810#"
_MESSAGES = {
    "TransactionConflictException": "Transaction is ongoing for the item",
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
    "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    "ThrottlingException": "Throughput exceeds the current capacity of your table or index. DynamoDB is "
    "automatically scaling your table or index so please try again shortly.",
    "InternalServerError": "Internal server error",
}


def parse_faults(spec) -> dict:
    """A fault spec (dict, JSON text or compact text; empty or "off": none) -> a checked dict."""
    if isinstance(spec, bytes):
        spec = spec.decode()
    if isinstance(spec, str):
        spec = spec.strip()
        if spec in ("", "off"):
            return {}
        if spec.startswith("{"):
            spec = json.loads(spec)
        else:
            out: dict = {}
            for part in filter(None, (p.strip() for p in spec.split(";"))):
                key, _, value = part.partition("=")
                if key.strip() == "seed":
                    out["seed"] = int(value)
                    continue
                rates = {}
                for pair in filter(None, (x.strip() for x in value.split(","))):
                    op, _, rate = pair.rpartition(":")
                    rates[op.strip()] = float(rate)
                out[key.strip()] = rates
            spec = out
    if not isinstance(spec, dict):
        raise ValueError("a fault spec is an object")
    config: dict = {"seed": int(spec.get("seed", 0))}
    for kind, rates in spec.items():
        if kind == "seed":
            continue
        if kind not in FAULT_KINDS or not isinstance(rates, dict):
            raise ValueError(f"unknown fault kind {kind!r}: use {', '.join(FAULT_KINDS)}")
        for op, rate in rates.items():
            if not 0 <= float(rate) <= 1:
                raise ValueError(f"rate for {kind} {op} must be between 0 and 1")
        config[kind] = {op: float(rate) for op, rate in rates.items()}
    for op in {op for k in FAULT_KINDS for op in config.get(k, {})}:
        if sum(config.get(k, {}).get(op, 0) for k in FAULT_KINDS) > 1:
            raise ValueError(f"fault rates for {op} add up to more than 1")
    return config


class Faults:
    def __init__(self) -> None:
        self.configure({})

    def configure(self, spec) -> dict:
        config = parse_faults(spec)
        self.config = config
        self.rng = random.Random(config.get("seed", 0))
        self.injected: dict[str, dict[str, int]] = {}
        return config

    def report(self) -> dict:
        return {"config": self.config, "injected": self.injected}

    def _rate(self, kind: str, op: str) -> float:
        rates = self.config.get(kind, {})
        if kind == "conflict" and op not in _CONFLICTING:
            return 0.0
        return rates.get(op, rates.get("*", 0.0))

    def draw(self, op: str) -> str | None:
        """The fault this request meets, if any (call under the DynamoDB lock)."""
        rates = [(k, self._rate(k, op)) for k in FAULT_KINDS]
        if not any(r for _, r in rates):
            return None
        u, edge = self.rng.random(), 0.0
        for kind, rate in rates:
            edge += rate
            if u < edge:
                counts = self.injected.setdefault(op, {})
                counts[kind] = counts.get(kind, 0) + 1
                return kind
        return None

    def answer(self, kind: str, op: str, body: bytes) -> tuple[str, dict]:
        """(HTTP status, JSON body) of an injected refusal."""
        if kind in ("error", "lost"):
            return "500 Internal Server Error", {"__type": _ERR + "InternalServerError",
                                                 "message": _MESSAGES["InternalServerError"]}
        variants = ["ProvisionedThroughputExceededException", "ThrottlingException"]
        if kind == "conflict" and op not in _TRANSACTIONS:
            code = "TransactionConflictException"
        elif kind == "conflict" or (op in _TRANSACTIONS and self.rng.random() < 1 / 3):
            reason = "TransactionConflict" if kind == "conflict" else "ThrottlingError"
            try:
                n = len(json.loads(body or b"{}").get("TransactItems", [])) or 1
            except ValueError:
                n = 1
            hit = self.rng.randrange(n)
            reasons = [{"Code": "None"}] * n
            reasons[hit] = {"Code": reason, "Message": _MESSAGES["TransactionConflictException"]
                            if kind == "conflict" else _MESSAGES["ThrottlingException"]}
            codes = ", ".join(r["Code"] for r in reasons)
            return "400 Bad Request", {
                "__type": _ERR + "TransactionCanceledException", "CancellationReasons": reasons,
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            }
        else:
            code = variants[self.rng.randrange(2)]
        return "400 Bad Request", {"__type": _ERR + code, "message": _MESSAGES[code]}


def _json_response(start_response, status: str, payload: dict) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body))),
                            ("x-amzn-RequestId", f"feikong-fault-{random.getrandbits(32):08x}")])
    return [body]


class SerialDynamoDB:
    """Also counts DynamoDB requests by operation: GET /__feikong__/stats (for bench/),
    and injects faults when asked to: /__feikong__/faults (above)."""

    def __init__(self, app, faults: Faults | None = None) -> None:
        self.app = app
        self.counts: dict[str, int] = {}
        self.faults = faults or Faults()

    def _faults_endpoint(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            with _dynamodb_lock:
                if method in ("POST", "PUT"):
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    self.faults.configure(environ["wsgi.input"].read(length) if length else b"")
                elif method == "DELETE":
                    self.faults.configure({})
                return _json_response(start_response, "200 OK", self.faults.report())
        except (ValueError, TypeError) as e:
            return _json_response(start_response, "400 Bad Request", {"error": f"bad fault spec: {e}"})

    def _dynamodb(self, op: str, environ, start_response):
        fault = self.faults.draw(op)
        if fault is None:
            return list(self.app(environ, start_response))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if fault == "lost":  # let moto apply it, then lose the answer
            environ["wsgi.input"] = io.BytesIO(body)
            list(self.app(environ, lambda *a, **k: None))
        status, payload = self.faults.answer(fault, op, body)
        return _json_response(start_response, status, payload)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/__feikong__/faults":
            return self._faults_endpoint(environ, start_response)
        if environ.get("PATH_INFO") == "/__feikong__/stats":
            body = json.dumps({"dynamodb": self.counts}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDBStreams_"):  # never in the middle of a transaction (not counted)
            with _dynamodb_lock:
                return list(self.app(environ, start_response))
        if target.startswith("DynamoDB_"):
            op = target.split(".", 1)[-1]
            with _dynamodb_lock:
                self.counts[op] = self.counts.get(op, 0) + 1
                # Consume the whole response inside the lock.
                return self._dynamodb(op, environ, start_response)
        return self.app(environ, start_response)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per request is noise here
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Feikong local AWS emulator (moto)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()
    faults = Faults()
    try:
        faults.configure(os.environ.get("FEIKONG_MOTO_FAULTS", ""))
    except (ValueError, TypeError) as e:
        sys.exit(f"FEIKONG_MOTO_FAULTS: bad fault spec: {e}")
    app = SerialDynamoDB(DomainDispatcherApplication(create_backend_app), faults)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, request_handler=QuietHandler)


if __name__ == "__main__":
    main()
