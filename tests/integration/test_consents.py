"""Mini-program subscribe-message consents: the store (core/store/consents.py) on the AWS
emulator, under concurrency, and the tenant endpoint /api/v1/subscriptions over HTTP."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests

from core.store import consents
from testkit.apistack import ApiStack

T = 10
TEMPLATES = "low_balance=SUB-LOW,cut_imminent=SUB-CUT,supply_cut=SUB-OFF,payment_received=SUB-PAY"


def openid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def test_grant_take_counts(aws):
    who = openid()
    assert consents.counts(who) == {}
    assert consents.take(who, "low_balance") is False  # never granted
    consents.grant(who, "low_balance")
    consents.grant(who, "low_balance", 2)
    consents.grant(who, "payment_received")
    assert consents.counts(who) == {"low_balance": 3, "payment_received": 1}
    assert [consents.take(who, "low_balance") for _ in range(4)] == [True, True, True, False]
    assert consents.counts(who) == {"low_balance": 0, "payment_received": 1}
    with pytest.raises(ValueError):
        consents.grant(who, "low_balance", 0)


def _race(who: str, key: str, takers: int) -> list[bool]:
    barrier = threading.Barrier(takers)
    results: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        barrier.wait()
        won = consents.take(who, key)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=take) for _ in range(takers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_takes_of_one_grant_one_wins(aws):
    for _ in range(10):  # ten separate races, each at a barrier
        who = openid()
        consents.grant(who, "cut_imminent")
        assert sorted(_race(who, "cut_imminent", 2)) == [False, True]
        assert consents.counts(who) == {"cut_imminent": 0}


def test_twelve_takers_of_five_grants_five_win(aws):
    who = openid()
    consents.grant(who, "low_balance", 5)
    assert _race(who, "low_balance", 12).count(True) == 5
    assert consents.counts(who) == {"low_balance": 0}


@pytest.fixture
def api(aws, monkeypatch):
    monkeypatch.setenv("FEIKONG_WECHAT_SUBSCRIBE_TEMPLATES", TEMPLATES)
    s = ApiStack(monkeypatch)
    yield s
    s.stop()


def test_the_subscriptions_endpoint_records_accepts_and_answers_counts(api):
    who = openid()
    auth = api.login(who)
    r = requests.get(f"{api.base}/api/v1/subscriptions", headers=auth, timeout=T)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {}
    assert {t["template_key"]: t["template_id"] for t in body["templates"]} == {
        "low_balance": "SUB-LOW", "cut_imminent": "SUB-CUT", "supply_cut": "SUB-OFF", "payment_received": "SUB-PAY"}
    assert next(t["title"] for t in body["templates"] if t["template_key"] == "low_balance") == "余额不足提醒"
    # after a payment: receipt, restore (not configured here: left out), low balance; at most three
    assert body["prompts"] == {"after_payment": ["SUB-PAY", "SUB-LOW"], "low_balance": ["SUB-LOW", "SUB-CUT", "SUB-OFF"]}

    r = requests.post(f"{api.base}/api/v1/subscriptions", headers=auth, timeout=T,
                      json={"results": {"low_balance": "accept", "cut_imminent": "reject", "supply_cut": "ban"}})
    assert r.status_code == 200, r.text
    assert r.json()["counts"] == {"low_balance": 1}
    r = requests.post(f"{api.base}/api/v1/subscriptions", headers=auth, timeout=T,
                      json={"results": {"low_balance": "accept", "payment_received": "accept"}})
    assert r.json()["counts"] == {"low_balance": 2, "payment_received": 1}
    assert consents.counts(who) == {"low_balance": 2, "payment_received": 1}
    # another tenant's grants are their own
    other = api.login(openid())
    assert requests.get(f"{api.base}/api/v1/subscriptions", headers=other, timeout=T).json()["counts"] == {}


@pytest.mark.parametrize("body, code", [
    ({"results": {"low_balance": "accept", "refund_done": "accept"}}, "template_unknown"),  # no template configured
    ({"results": {"low_balance": "maybe"}}, "invalid_request"),
    ({"results": {}}, "invalid_request"),
    ({"results": {"low_balance": "accept"}, "extra": 1}, "invalid_request"),
    ({}, "invalid_request"),
    ([1], "body_invalid"),
])
def test_bad_results_are_a_400_and_change_nothing(api, body, code):
    who = openid()
    auth = api.login(who)
    r = requests.post(f"{api.base}/api/v1/subscriptions", headers=auth, json=body, timeout=T)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert consents.counts(who) == {}


def test_the_subscriptions_endpoint_needs_a_login(api):
    assert requests.get(f"{api.base}/api/v1/subscriptions", timeout=T).status_code == 401
    r = requests.post(f"{api.base}/api/v1/subscriptions", json={"results": {"low_balance": "accept"}}, timeout=T)
    assert r.status_code == 401
