"""The tenant API against its own OpenAPI 3.1 document (docs/tenant-api.md): the document
is valid (openapi-spec-validator) and schemathesis, over WSGI against the app on the
emulated AWS stack with a logged-in tenant's bearer token, finds no server error, every
status code documented and every response body conforming to its schema.

Path ids and body account ids are, every other case, ones the tenant really holds (an
account with a meter, a ledger entry and an order), so the 200 answers are checked as well
as the 404s. Logging out would end the session the run uses, and an event stream holds each
case for seconds: both left out (unbinding is run with made-up ids only)."""

from __future__ import annotations

import itertools
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra.local.paystack import PayStack
from miniprogram_api.app import create_app
from testkit.builders import Metered

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXCLUDED = ("/api/v1/logout",)


def _streams(path: str) -> bool:
    """A server-sent event stream (GET .../stream) holds the connection for its bounded
    duration, seconds per case: its own tests cover it (docs/tenant-api.md, "Money chain")."""
    return path.endswith("/stream")

MAX_EXAMPLES = 16  # per operation, half of them negative: the module runs in well under 90 s


class Tenant:
    """A tenant with an account (a meter, an opening entry, an order), logged in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pay = PayStack()
        self.pay.start()
        for k, v in self.pay.env().items():
            monkeypatch.setenv(k, v)
        self.pay.apply_env()
        self.app = create_app()
        client = self.app.test_client()
        w = Metered()
        self.account_id = w.account(opening=12345)
        self.meter_id = w.meter(self.account_id)
        openid = f"o{uuid.uuid4().hex[:27]}"
        w.d.bind_openid(w.tenant_id, openid)
        r = client.post("/api/v1/login", json={"code": self.pay.api.issue_code(openid)})
        assert r.status_code == 200, r.get_data(as_text=True)
        self.headers = {"Authorization": f"Bearer {r.get_json()['token']}"}
        r = client.post("/api/v1/recharges", json={"account_id": self.account_id, "amount": 1000}, headers=self.headers)
        assert r.status_code == 201, r.get_data(as_text=True)
        self.out_trade_no = r.get_json()["out_trade_no"]
        self.ids = {"account_id": self.account_id, "meter_id": self.meter_id, "out_trade_no": self.out_trade_no}
        self._turn = itertools.count()

    def real_ids(self, case) -> None:
        """Every other case, the ids of the path (and an account id in a body) are real."""
        if next(self._turn) % 2 or case.method.upper() == "DELETE":
            return
        for name in list(case.path_parameters or {}):
            if name in self.ids:
                case.path_parameters[name] = self.ids[name]
        if isinstance(case.body, dict) and "account_id" in case.body:
            case.body["account_id"] = self.account_id
        if isinstance(case.query, dict) and "account_id" in case.query:
            case.query["account_id"] = self.account_id


@pytest.fixture(scope="module")
def tenant(aws):
    with pytest.MonkeyPatch.context() as mp:
        t = Tenant(mp)
        yield t
        t.pay.stop()


def test_the_document_is_valid_openapi_3_1(tenant):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    document = tenant.app.test_client().get("/api/v1/openapi.json").get_json()
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    for path in ("/api/v1/accounts", "/api/v1/accounts/{account_id}/statement", "/api/v1/orders/{out_trade_no}"):
        assert paths[path]["get"]["security"] == [{"bearer": []}], path
        assert "401" in paths[path]["get"]["responses"]
    assert paths["/api/v1/login"]["post"]["security"] == []  # logging in needs no token
    page = tenant.app.test_client().get("/api/v1/docs").get_data(as_text=True)
    assert "/static/vendor/swagger-ui-bundle.js" in page and "/static/vendor/swagger-ui.css" in page
    assert "http://" not in page and "https://" not in page  # served locally: no CDN on the page
    assert tenant.app.test_client().get("/static/vendor/swagger-ui-bundle.js").status_code == 200


def test_every_operation_conforms_to_the_document(tenant):
    """Each operation: MAX_EXAMPLES cases fitting the document and as many that do not
    (negative: they must be refused with a documented 4xx, never a 500)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", tenant.app)
    failures: dict[str, str] = {}
    ran = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in EXCLUDED or _streams(op.path):
            continue
        ran += 1

        @given(case=st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def run(case):
            tenant.real_ids(case)
            case.call_and_validate(headers=tenant.headers, checks=CHECKS)

        try:
            run()
        except Exception as e:  # noqa: BLE001 - collected: every operation's failure is reported
            failures[f"{op.method.upper()} {op.path}"] = str(e)[:2000]
    assert ran >= 8  # the reads, recharges, login: the document lists them
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
