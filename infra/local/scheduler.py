"""Run the functions of serverless.yml locally on their declared events.

EventBridge rules and SQS event source mappings do not fire in the emulator, so the
demo runs them here: every `schedule` event on its rate() or cron() expression
(croniter), every `sqs` event by polling its queue and handing batches to the handler
the way the event source mapping does (partial batch failures honoured), and every
DynamoDB `stream` event by reading the table's stream through the emulator's
dynamodbstreams API (GetShardIterator / GetRecords), applying the event's filter patterns,
batch size and retries (partial batch failures: the batch resumes at the first failed record).
"""

from __future__ import annotations

import importlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from croniter import croniter

from infra.fakes.sitesim import LambdaContext, drain_uplink

ROOT = Path(__file__).resolve().parents[2]
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


class _Loader(yaml.SafeLoader):
    pass


def _any_tag(loader, suffix, node):  # CloudFormation short forms (!GetAtt, !Sub...) as plain data
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


_Loader.add_multi_constructor("!", _any_tag)


def load_functions(path: Path = ROOT / "serverless.yml") -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)["functions"]


def handler_of(spec: dict):
    module, name = spec["handler"].rsplit(".", 1)
    return getattr(importlib.import_module(module.replace("/", ".")), name)


@dataclass
class Schedule:
    name: str
    expression: str
    handler: object

    def next_after(self, t: datetime) -> datetime:
        m = _RATE.match(self.expression)
        if m:
            n, unit = int(m.group(1)), m.group(2).rstrip("s")
            return t + timedelta(**{f"{unit}s": n})
        cron = re.match(r"^cron\((.*)\)$", self.expression)
        if not cron:
            raise ValueError(f"unsupported schedule {self.expression}")
        minute, hour, dom, month, dow, _year = cron.group(1).split()
        expr = " ".join(f.replace("?", "*") for f in (minute, hour, dom, month, dow))
        return croniter(expr, t).get_next(datetime)


def schedules(functions: dict) -> list[Schedule]:
    out = []
    for name, spec in functions.items():
        for event in spec.get("events", []):
            if "schedule" in event:
                out.append(Schedule(name, event["schedule"]["rate"], None))
                out[-1].handler = handler_of(spec)
    return out


def http_routes(functions: dict) -> dict[tuple[str, str], object]:
    """(METHOD, path) -> handler for every httpApi event."""
    routes = {}
    for spec in functions.values():
        for event in spec.get("events", []):
            if "httpApi" in event:
                routes[(event["httpApi"]["method"].upper(), event["httpApi"]["path"])] = handler_of(spec)
    return routes


def api_gateway_app(routes: dict):
    """A WSGI app that turns HTTP requests into API Gateway (HTTP API, v2) events."""
    import base64

    from werkzeug.wrappers import Request, Response

    def app(environ, start_response):
        req = Request(environ)
        handler = routes.get((req.method, req.path))
        if handler is None:
            return Response('{"message":"Not Found"}', 404, content_type="application/json")(environ, start_response)
        raw = req.get_data()
        event = {
            "version": "2.0", "routeKey": f"{req.method} {req.path}", "rawPath": req.path,
            "rawQueryString": req.query_string.decode(), "headers": {k.lower(): v for k, v in req.headers.items()},
            "requestContext": {"http": {"method": req.method, "path": req.path}},
            "body": base64.b64encode(raw).decode(), "isBase64Encoded": True,
        }
        result = handler(event, LambdaContext())
        return Response(result.get("body", ""), result.get("statusCode", 200),
                        headers=result.get("headers") or {})(environ, start_response)

    return app


# -- DynamoDB streams ----------------------------------------------------------------------


def table_of_resource(resource: str) -> str:
    """The emulator's table name of a generated table resource ("EventsTable" -> feikong-<stage>-events)."""
    from core.settings import resource_name
    from core.store.schema import table_specs
    from infra.deploy.resources import logical_id

    for spec in table_specs():
        if logical_id(spec["TableName"], "Table") == resource:
            return resource_name(spec["TableName"])
    raise ValueError(f"no table for {resource}")


def matches(pattern: object, data: object) -> bool:
    """Lambda's event filter pattern subset serverless.yml uses: nested keys, and a list of
    exact values any of which may match."""
    if isinstance(pattern, dict):
        return isinstance(data, dict) and all(k in data and matches(v, data[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        return data in pattern
    return pattern == data


class StreamReader:
    """Reads a table's stream from a position ("LATEST": what is written from now on;
    "TRIM_HORIZON": everything kept) through the dynamodbstreams API."""

    def __init__(self, table: str, start: str = "LATEST") -> None:
        import boto3

        self.ddb, self.streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
        self.arn = self.ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.iterators = {
            shard["ShardId"]: self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard["ShardId"],
                                                              ShardIteratorType=start)["ShardIterator"]
            for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]}
        self.pending: list[dict] = []  # read, not yet handled successfully
        self.tries = 0

    def read(self, limit: int) -> list[dict]:
        for shard, it in list(self.iterators.items()):
            if len(self.pending) >= limit:
                break
            resp = self.streams.get_records(ShardIterator=it, Limit=limit)
            self.iterators[shard] = resp["NextShardIterator"]
            self.pending += [dict(r, eventSourceARN=self.arn) for r in resp["Records"]]
        return self.pending[:limit]


def drain_stream(reader: StreamReader, handler: Callable, event: dict | None = None, max_batches: int = 100,
                 errors: list[str] | None = None) -> int:
    """Hand what the stream holds to a Lambda handler as DynamoDB stream events, the way the
    event source mapping does: filtered (`filterPatterns`), `batchSize` at a time; on a partial
    failure the batch resumes at the first failed record, retried `maximumRetryAttempts` times
    and then dropped (in Lambda: to the on-failure destination). Returns the records handled."""
    from infra.fakes.sitesim import LambdaContext

    event = event or {}
    patterns = event.get("filterPatterns") or []
    size, max_retries = int(event.get("batchSize", 100)), int(event.get("maximumRetryAttempts", 3))
    handled = 0
    for _ in range(max_batches):
        batch = reader.read(size)
        if not batch:
            break
        wanted = [r for r in batch if not patterns or any(matches(p, r) for p in patterns)]
        failed_at = len(batch)
        if wanted:
            try:
                result = handler({"Records": wanted}, LambdaContext()) or {}
                failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception as e:  # the whole batch failed
                failures = [wanted[0]["dynamodb"]["SequenceNumber"]]
                if errors is not None:
                    errors.append(f"stream handler: {e!r}")
            if failures:
                seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
                failed_at = min(seqs.index(f) for f in failures if f in seqs) if set(failures) & set(seqs) else 0
        if failed_at < len(batch):
            reader.tries += 1
            if reader.tries <= max_retries:
                reader.pending = reader.pending[failed_at:]
                handled += failed_at
                break  # try again on the next poll
            if errors is not None:
                errors.append(f"stream records dropped after {max_retries} retries: {len(batch) - failed_at}")
        reader.tries = 0
        reader.pending = reader.pending[len(batch):]
        handled += len(batch)
    return handled


class LocalRunner:
    """Threads that fire schedules, drain queues and serve HTTP events until stopped."""

    def __init__(self, queue_urls: dict[str, str], poll_seconds: float = 1.0, http_port: int | None = None,
                 stream_start: str = "LATEST") -> None:
        self.http_port = http_port
        self.stream_start = stream_start  # where stream readers begin: LATEST (as deployed) or TRIM_HORIZON
        self._http = None
        self.functions = load_functions()
        self.queue_urls = queue_urls  # logical queue resource name -> URL
        self.poll_seconds = poll_seconds
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def start(self) -> LocalRunner:
        for s in schedules(self.functions):
            self._spawn(self._schedule_loop, s)
        for name, spec in self.functions.items():
            for event in spec.get("events", []):
                if "sqs" in event:
                    resource = event["sqs"]["arn"]["GetAtt"].split(".")[0]
                    self._spawn(self._queue_loop, name, self.queue_url(resource), handler_of(spec))
                if "stream" in event:
                    resource = event["stream"]["arn"]["GetAtt"].split(".")[0]
                    reader = StreamReader(table_of_resource(resource), self.stream_start)
                    self._spawn(self._stream_loop, name, reader, handler_of(spec), event["stream"])
        routes = http_routes(self.functions)
        if routes and self.http_port is not None:
            from werkzeug.serving import make_server

            self._http = make_server("127.0.0.1", self.http_port, api_gateway_app(routes), threaded=True)
            self._spawn(self._http.serve_forever)
        return self

    def queue_url(self, resource: str) -> str:
        """The URL of a generated queue resource ("MonthEndQueue"): as given, else found by name
        in the emulator (a queue added to serverless.yml runs here without its caller naming it)."""
        if resource not in self.queue_urls:
            import boto3

            from core.integrations.queues import QUEUES, queue_name
            from infra.deploy.resources import logical_id

            name = next((n for n in QUEUES if logical_id(n, "Queue") == resource), None)
            if name is None:
                raise ValueError(f"no queue for {resource}")
            self.queue_urls[resource] = boto3.client("sqs").get_queue_url(QueueName=queue_name(name))["QueueUrl"]
        return self.queue_urls[resource]

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _schedule_loop(self, s: Schedule) -> None:
        due = s.next_after(datetime.now(UTC))
        while not self.stop.wait(max(0.0, min(1.0, (due - datetime.now(UTC)).total_seconds()))):
            if datetime.now(UTC) >= due:
                self._call(s.name, lambda: s.handler({"source": "aws.events", "detail-type": "Scheduled Event"},
                                                     LambdaContext()))
                due = s.next_after(datetime.now(UTC))

    def _queue_loop(self, name: str, url: str, handler) -> None:
        while not self.stop.is_set():
            delivered = self._call(name, lambda: drain_uplink(url, handler, max_batches=20)) or 0
            if not delivered:
                self.stop.wait(self.poll_seconds)

    def _stream_loop(self, name: str, reader: StreamReader, handler, event: dict) -> None:
        while not self.stop.is_set():
            handled = self._call(name, lambda: drain_stream(reader, handler, event, max_batches=20,
                                                            errors=self.errors)) or 0
            if not handled:
                self.stop.wait(self.poll_seconds)

    def _call(self, name: str, fn):
        try:
            return fn()
        except Exception as e:  # a local runner keeps going, as Lambda would retry
            self.errors.append(f"{name}: {e!r}")
            time.sleep(self.poll_seconds)
            return None

    def shutdown(self) -> None:
        self.stop.set()
        if self._http is not None:
            self._http.shutdown()
        for t in self.threads:
            t.join(timeout=10)
