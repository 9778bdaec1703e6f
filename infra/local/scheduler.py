"""Run the functions of serverless.yml locally on their declared events.

EventBridge rules and SQS event source mappings do not fire in the emulator, so the
demo runs them here: every `schedule` event on its rate() or cron() expression
(croniter), every `sqs` event by polling its queue and handing batches to the handler
the way the event source mapping does (partial batch failures honoured).
"""

from __future__ import annotations

import importlib
import re
import threading
import time
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


class LocalRunner:
    """Threads that fire schedules, drain queues and serve HTTP events until stopped."""

    def __init__(self, queue_urls: dict[str, str], poll_seconds: float = 1.0, http_port: int | None = None) -> None:
        self.http_port = http_port
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
                    self._spawn(self._queue_loop, name, self.queue_urls[resource], handler_of(spec))
        routes = http_routes(self.functions)
        if routes and self.http_port is not None:
            from werkzeug.serving import make_server

            self._http = make_server("127.0.0.1", self.http_port, api_gateway_app(routes), threaded=True)
            self._spawn(self._http.serve_forever)
        return self

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
