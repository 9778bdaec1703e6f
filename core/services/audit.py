"""The ledger audit: every account's balance must equal the sum of its entries."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services.ledger import LedgerService
from core.store import audit as store

log = Logger(service="feikong", child=True)


def verify_all(ledger: LedgerService | None = None) -> dict:
    ledger = ledger or LedgerService()
    checked, broken = 0, []
    for account_id in store.account_ids():
        result = ledger.verify(account_id)
        checked += 1
        if not result["ok"]:
            broken.append(result)
            log.error("ledger audit mismatch", **result)
    log.info("ledger audit done", checked=checked, broken=len(broken))
    return {"checked": checked, "broken": broken}
