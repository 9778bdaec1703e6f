"""Bad input is refused with a clear error and writes nothing."""

import pytest

from core.domain.errors import FeikongError
from core.services.ledger import LedgerService
from core.store.models import LedgerEntryItem
from tests.conftest import uid

GOOD = {"entry_id": "pay:ok", "kind": "recharge", "amount": 100, "cause": "test", "actor": "tester"}


@pytest.mark.parametrize(
    "change,code,status",
    [
        ({"amount": 1.5}, "amount_not_integer", 400),
        ({"amount": "100"}, "amount_not_integer", 400),
        ({"amount": True}, "amount_not_integer", 400),
        ({"amount": None}, "amount_not_integer", 400),
        ({"amount": -100}, "amount_not_positive", 400),
        ({"amount": 0}, "amount_not_positive", 400),
        ({"amount": 10**13}, "amount_too_large", 400),
        ({"entry_id": ""}, "id_empty", 400),
        ({"entry_id": None}, "id_empty", 400),
        ({"entry_id": "white space"}, "id_invalid", 400),
        ({"kind": "gift"}, "kind_invalid", 400),
        ({"kind": "opening"}, "kind_not_postable", 400),
        ({"cause": ""}, "field_required", 400),
        ({"actor": ""}, "field_required", 400),
        ({"occurred_at": "yesterday"}, "time_invalid", 400),
    ],
)
def test_refused_and_nothing_written(world, change, code, status):
    a = world.account(opening=5000)
    ledger = LedgerService()
    before = ledger.verify(a)
    fields = {**GOOD, **change, "account_id": a}
    with pytest.raises(FeikongError) as e:
        ledger.post(**fields)
    assert (e.value.code, e.value.status) == (code, status)
    assert e.value.message  # a sentence for a person
    body = e.value.to_body()["error"]
    assert body["code"] == code and body["message"]
    after = ledger.verify(a)
    assert (after["balance"], after["entries"], after["version"]) == (before["balance"], before["entries"], before["version"])
    if isinstance(fields["entry_id"], str) and fields["entry_id"]:
        assert LedgerEntryItem.count(a, LedgerEntryItem.entry_id == fields["entry_id"]) == 0


def test_unknown_account_is_refused_and_writes_nothing(aws):
    ghost = uid("ghost")
    with pytest.raises(FeikongError) as e:
        LedgerService().post(account_id=ghost, **GOOD)
    assert (e.value.code, e.value.status) == ("account_not_found", 404)
    assert LedgerEntryItem.count(ghost) == 0


@pytest.mark.parametrize("bad", ["", None, "a b", "x" * 300])
def test_bad_account_id_is_refused(aws, bad):
    with pytest.raises(FeikongError) as e:
        LedgerService().post(**{**GOOD, "account_id": bad})
    assert e.value.status == 400
