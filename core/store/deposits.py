"""Deposits (押金) in DynamoDB (table `deposits`, core/store/models.py DepositItem): one
partition per account; `HELD` holds what is held now, `MOV#<movement_id>` each movement.
A movement is put (condition: its id absent) in one transaction with the ADD of its amount
to `held`, a debit on the condition that `held` covers it: held = Σ movements and never
below zero, at every moment."""

from __future__ import annotations

from core.domain.deposits import Movement
from core.store.models import DepositItem
from core.store.tx import Tx

HELD = "HELD"


def mov_sk(movement_id: str) -> str:
    return f"MOV#{movement_id}"


def add_movement(tx: Tx, m: Movement, tag: str) -> None:
    """Transaction items of one movement (also the MoveDeposit write record: core/store/unit.py)."""
    tx.put(DepositItem(m.account_id, mov_sk(m.movement_id), property_id=m.property_id, kind=m.kind, amount=m.amount,
                       method=m.method, ref=m.ref, actor=m.actor, at=m.at, memo=m.memo),
           DepositItem.sk.does_not_exist(), tag=tag)
    condition = None
    if m.amount < 0:
        condition = DepositItem.held >= -m.amount
    tx.update(DepositItem(m.account_id, HELD),
              [DepositItem.held.add(m.amount), DepositItem.property_id.set(m.property_id)], condition, tag=tag)


def put_movement(m: Movement) -> bool:
    """A movement alone: True if written, False if its id was there or held does not cover it."""
    tx = Tx()
    add_movement(tx, m, "movement")
    return tx.commit() is None


def _movement(i: DepositItem) -> Movement:
    return Movement(i.account_id, i.property_id or "", i.sk[len("MOV#"):], i.kind or "", int(i.amount or 0),
                    i.method or "", i.ref or "", i.actor or "", i.at or "", i.memo or "")


def get_movement(account_id: str, movement_id: str) -> Movement | None:
    try:
        return _movement(DepositItem.get(account_id, mov_sk(movement_id), consistent_read=True))
    except DepositItem.DoesNotExist:
        return None


def deposit(account_id: str) -> tuple[int, list[Movement]]:
    """(held, movements oldest first): one consistent Query of the account's partition."""
    held, movements = 0, []
    for i in DepositItem.query(account_id, consistent_read=True):
        if i.sk == HELD:
            held = int(i.held or 0)
        else:
            movements.append(_movement(i))
    movements.sort(key=lambda m: (m.at, m.movement_id))
    return held, movements


def held(account_id: str) -> int:
    try:
        return int(DepositItem.get(account_id, HELD, consistent_read=True).held or 0)
    except DepositItem.DoesNotExist:
        return 0
