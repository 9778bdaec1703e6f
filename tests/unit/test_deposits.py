"""Deposit rules (core/domain/deposits.py), on hand-worked cases."""

from __future__ import annotations

import pytest

from core.domain import deposits as d
from core.domain.errors import Conflict, ValidationError


def mv(kind, amount, method="cash", ref="R0001"):
    return d.movement("acct-1", "p1", kind, amount, method, ref, "admin:a1", "2026-11-30T02:00:00.000000Z")


def test_movements_are_signed_and_named_by_their_receipt():
    take, refund, apply = mv("take", 100_000), mv("refund", 30_000, "bank", "R0002"), mv("apply", 70_000, ref="close")
    assert (take.movement_id, take.amount, take.kind_name) == ("take:R0001", 100_000, "收取押金")
    assert (refund.movement_id, refund.amount, refund.method) == ("refund:R0002", -30_000, "bank")
    assert (apply.movement_id, apply.amount, apply.method) == ("apply:close", -70_000, "balance")
    assert d.held_after([take, refund, apply]) == 0


def test_held_never_goes_below_zero():
    d.check_held(mv("refund", 70_000), 70_000)  # exactly what is held: allowed
    with pytest.raises(Conflict) as e:
        d.check_held(mv("refund", 70_001), 70_000)
    assert e.value.code == "deposit_insufficient" and "700.00" in e.value.message
    d.check_held(mv("take", 1), 0)


def test_the_same_receipt_is_the_same_movement_or_a_conflict():
    first = mv("take", 100_000)
    assert d.as_duplicate(first, mv("take", 100_000)).duplicate
    with pytest.raises(Conflict):
        d.as_duplicate(first, mv("take", 90_000))


@pytest.mark.parametrize("kind,amount,method,ref,code", [
    ("take", 0, "cash", "R0001", "amount_invalid"),
    ("take", -5, "cash", "R0001", "amount_invalid"),
    ("take", 10.5, "cash", "R0001", "amount_invalid"),
    ("take", True, "cash", "R0001", "amount_invalid"),
    ("take", 100, "wechat", "R0001", "method_invalid"),
    ("refund", 100, "", "R0001", "method_invalid"),
    ("take", 100, "cash", "", "receipt_no_required"),
    ("take", 100, "cash", "R#1", "id_invalid"),
    ("steal", 100, "cash", "R0001", "deposit_kind_invalid"),
])
def test_bad_input_is_refused_before_anything(kind, amount, method, ref, code):
    with pytest.raises(ValidationError) as e:
        mv(kind, amount, method, ref)
    assert e.value.code == code
