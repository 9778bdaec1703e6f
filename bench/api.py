"""The tenant API's reads (docs/tenant-api.md): "my accounts", "usage by day for a month"
and "statement page", each a logged-in GET through the Flask test client against the
emulator (the WeChat API emulator for the login). For each: requests per second and p99
of --calls calls one after the other, and the DynamoDB requests per call, counted with a
botocore hook on the process's one session as bench/console.py does, by table.

A call's requests include the session check every authenticated request makes (a consistent
read of its tenant_sessions item, docs/tenant-auth.md): these reads carry it in their own
BatchGet (tenant_required(deferred=True)), so the target counts every request on every
table. The session's share is reported next to it: the requests that read tenant_sessions,
and those that read nothing else (a GetItem of the session alone).

The data: a tenant bound to 3 accounts at 2 properties; one account with 200 ledger
entries (a statement page is 20) and a month of daily usage aggregates (30 days, seeded
in the aggregates table the way a rated reading adds to it).

    .venv/bin/python bench/api.py [--calls 200]

Targets: DynamoDB requests per call, the session check included, <= 2 for my accounts, a
month of usage by day and a statement page; every answer is right (accounts, 30 usage days, 20 entries + a cursor).
The last line is one JSON object (bench/report.py); the exit code is 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish, percentile, with_pay_stack  # noqa: E402

MAX_REQUESTS = 2
ENTRIES = 200
PAGE = 20
USAGE_DAYS = 30


class ByTable:
    """Records the tables of each DynamoDB request (from the API parameters: one for a
    GetItem or Query, each table of a BatchGetItem) made through the process's one botocore
    session, as bench/console.py's DynamoRequests counts operations. The hook's unique id is
    this counter's own: botocore ignores a second handler under an id already registered,
    and the session outlives a test, so a shared id would leave a later counter deaf."""

    def __init__(self) -> None:
        self.requests: list[frozenset[str]] = []  # the tables of each request, in order
        self._tabled: set[int] = set()

    def attach(self) -> ByTable:
        from core import aws
        from core.store import connections

        emitters = [aws.session().get_component("event_emitter")]
        emitters += [c.meta.events for c in list(aws._clients.values())]
        emitters += [c._client.meta.events for c in list(connections._by_retries.values()) if c._client is not None]
        for events in emitters:
            if id(events) not in self._tabled:
                events.register("before-parameter-build.dynamodb", self._table, unique_id=f"api-bench-table-{id(self)}")
                self._tabled.add(id(events))
        return self

    def _table(self, params=None, **_) -> None:
        params = params or {}
        tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems") or {})
        self.requests.append(frozenset(tables or ["?"]))


def build(stack) -> dict:
    """The tenant, their accounts, entries and usage; returns what the calls need."""
    from core.domain.usage import BandUsage, Usage
    from core.services.ledger import LedgerService
    from core.store.tx import Tx
    from core.store.usage import add_usage
    from testkit.builders import World

    here, there = World(), World()
    accounts = [here.account(opening=10_000), here.account(opening=5_000), there.account(opening=800)]
    openid = f"o{uuid.uuid4().hex[:27]}"
    here.d.bind_openid(here.tenant_id, openid)
    there.d.bind_openid(there.tenant_id, openid)
    ledger = LedgerService()
    for n in range(ENTRIES - 1):  # + the opening entry
        ledger.post(account_id=accounts[0], entry_id=f"fee:bench-{n}", kind="fee", amount=1, cause="bench",
                    actor="admin:bench@local", memo=f"测试费用 {n}")
    first = date.today().replace(day=1) - timedelta(days=40)
    for d in range(USAGE_DAYS):
        tx = Tx()
        add_usage(tx, Usage(accounts[0], "m-bench", "electricity", first + timedelta(days=d),
                            (BandUsage("flat", Decimal("3.25"), 325),)), tag="bench")
        assert not tx.commit()
    code = stack.api.issue_code(openid)
    return {"openid": openid, "accounts": accounts, "code": code, "first": first,
            "last": first + timedelta(days=USAGE_DAYS - 1)}


def measure(counter: ByTable, session_table: str, call, check, calls: int) -> dict:
    call()  # warm: clients, caches
    seconds, per_call, right = [], [], True
    for _ in range(calls):
        counter.attach()
        before = len(counter.requests)
        t = time.perf_counter()
        r = call()
        seconds.append(time.perf_counter() - t)
        per_call.append(counter.requests[before:])
        right = right and check(r)
    total = sum(seconds)
    return {
        "calls": calls,
        "rps": round(calls / total, 1),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
        "ddb_requests_per_call": max(len(reqs) for reqs in per_call),  # every table, the session check included
        # the session check's share: requests that read the session item, and those that read nothing else
        "session_check_requests": max(sum(session_table in t for t in reqs) for reqs in per_call),
        "session_only_requests": max(sum(t == {session_table} for t in reqs) for reqs in per_call),
        "requests": sorted(Counter("+".join(sorted(n.rsplit("-", 1)[-1] for n in t)) for t in per_call[-1]).items()),
        "right": right,
    }


def run(args, stack) -> int:
    from core.settings import resource_name
    from miniprogram_api.app import create_app

    data = build(stack)
    app = create_app()
    client = app.test_client()
    r = client.post("/api/v1/login", json={"code": data["code"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    auth = {"Authorization": f"Bearer {r.get_json()['token']}"}
    account = data["accounts"][0]
    counter = ByTable().attach()
    sessions = resource_name("tenant_sessions")
    usage_url = (f"/api/v1/accounts/{account}/usage?granularity=day&start={data['first'].isoformat()}"
                 f"&end={data['last'].isoformat()}")
    has_usage = any(rule.rule == "/api/v1/accounts/<account_id>/usage" for rule in app.url_map.iter_rules())

    def ok_accounts(r) -> bool:
        return r.status_code == 200 and sorted(a["account_id"] for a in r.get_json()["accounts"]) == sorted(
            data["accounts"])

    def ok_usage(r) -> bool:
        points = r.get_json().get("points", []) if r.status_code == 200 else []
        return len(points) == USAGE_DAYS and all(p["cost_fen"] == 325 for p in points)

    def ok_statement(r) -> bool:
        body = r.get_json() if r.status_code == 200 else {}
        return len(body.get("entries", [])) == PAGE and bool(body.get("next_cursor"))

    results = {
        "my_accounts": measure(counter, sessions, lambda: client.get("/api/v1/accounts", headers=auth), ok_accounts,
                               args.calls),
        "statement_page": measure(counter, sessions, lambda: client.get(
            f"/api/v1/accounts/{account}/statement?limit={PAGE}", headers=auth), ok_statement, args.calls),
    }
    if has_usage:
        results["usage_by_day_for_a_month"] = measure(counter, sessions, lambda: client.get(usage_url, headers=auth),
                                                      ok_usage, args.calls)
    result = {"bench": "api", "on": "emulator (moto over HTTP, one process, calls one after the other)",
              "usage_endpoint": "present" if has_usage else "missing", **results}
    targets = {}
    for name in ("my_accounts", "usage_by_day_for_a_month", "statement_page"):
        got = results.get(name)
        targets[f"{name}_requests"] = (
            f"{name.replace('_', ' ')}: <= {MAX_REQUESTS} DynamoDB requests per call, the session check included",
            bool(got) and got["ddb_requests_per_call"] <= MAX_REQUESTS)
        targets[f"{name}_right"] = (f"{name.replace('_', ' ')}: every answer right", bool(got) and got["right"])
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish(result, targets)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    return with_pay_stack(run, args)


if __name__ == "__main__":
    sys.exit(main())
