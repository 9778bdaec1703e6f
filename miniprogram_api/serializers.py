"""Response bodies: what each route returns, built from the services' domain objects.

Money goes out twice: `*_fen` (integer fen, for programs) and a yuan string (for people).
"""

from __future__ import annotations

from core.domain.directory import Account
from core.domain.money import yuan
from core.domain.payments import Order


def tenant_account(a: Account) -> dict:
    """An account as its tenant sees it (GET /api/v1/accounts)."""
    return {"account_id": a.account_id, "name": a.name, "balance_fen": a.balance, "balance": yuan(a.balance),
            "supply": a.cut_state}


def recharge_status(o: Order) -> dict:
    """A recharge order's state (GET /api/v1/recharges/<out_trade_no>)."""
    return {"out_trade_no": o.out_trade_no, "status": o.status, "amount": o.amount, "account_id": o.account_id,
            "paid_at": o.paid_at}


def console_account(a: Account) -> dict:
    return {"account_id": a.account_id, "name": a.name, "balance_fen": a.balance, "supply": a.cut_state}


def room_with_balances(row: dict) -> dict:
    """A room of the console's room list: the room, its accounts and their balances summed
    (a row of core.services.directory.rooms_with_balances)."""
    room = row["room"]
    return {"room_id": room.room_id, "name": room.name, "area_m2": room.area_m2, "balance_fen": row["balance"],
            "balance": yuan(row["balance"]), "accounts": [console_account(a) for a in row["accounts"]]}
