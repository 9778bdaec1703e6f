"""Lambda handlers invoked with real events against the emulator."""

from dataclasses import dataclass

from core.services.ledger import LedgerService
from core.store.models import AccountItem
from functions import ledger_audit


@dataclass
class Context:
    function_name: str = "ledgerAudit"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws-cn:lambda:cn-northwest-1:123456789012:function:ledgerAudit"
    aws_request_id: str = "req-1"


SCHEDULE_EVENT = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def test_ledger_audit_finds_a_balance_that_does_not_match_its_entries(world):
    good = world.account(opening=1000)
    LedgerService().post(account_id=good, entry_id="use:1", kind="energy", amount=10, cause="t", actor="t")
    bad = world.account(opening=1000)
    # Tamper with a balance behind the ledger's back (what the audit exists to catch).
    AccountItem(bad).update(actions=[AccountItem.balance.set(999_999)])
    result = ledger_audit.handler(SCHEDULE_EVENT, Context())
    assert bad in result["broken"]
    assert good not in result["broken"]
    assert result["checked"] >= 2
