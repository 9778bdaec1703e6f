"""The incremental ledger audit against the emulator: it reads only the entries posted
since each account's checkpoint, finds tampered entries, and never moves a checkpoint
past one. Balances below are worked by hand: opening 1000 fen, then -10 per use."""

from core.domain.audit import Checkpoint
from core.services import audit
from core.services.ledger import LedgerService
from core.store import audit as audit_store
from core.store.models import AccountItem, EventItem, LedgerEntryItem
from infra.local.stack import dynamodb_request_counts


def use(ledger: LedgerService, account: str, *seqs: int) -> None:
    """One 0.10 yuan energy posting per seq; the entry id names the seq it gets."""
    for seq in seqs:
        ledger.post(account_id=account, entry_id=f"use:{seq}", kind="energy", amount=10, cause="t", actor="t")


def checkpoint(account: str) -> Checkpoint:
    return audit_store.subject(account).checkpoint


def requests_of(call) -> tuple[object, dict[str, int]]:
    before = dynamodb_request_counts()
    result = call()
    after = dynamodb_request_counts()
    return result, {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}


def alerts(account: str) -> list[EventItem]:
    return [e for e in EventItem.query(f"account#{account}", consistent_read=True) if e.type == "ledger_audit"]


def test_after_new_postings_the_audit_reads_only_them(world):
    ledger = LedgerService()
    a = world.account(opening=1000)  # seq 1
    use(ledger, a, 2, 3, 4, 5, 6)
    first = audit.verify_accounts([a])
    assert (first["checked"], first["advanced"], first["entries_read"], first["broken"]) == (1, 1, 6, [])
    cp = checkpoint(a)
    assert (cp.seq, cp.balance) == (6, 950)

    use(ledger, a, 7, 8, 9)
    second, requests = requests_of(lambda: audit.verify_accounts([a]))
    assert second["entries_read"] == 3 and second["broken"] == []
    # one batch read of the account, one query from the checkpoint on, one checkpoint write
    assert requests == {"BatchGetItem": 1, "Query": 1, "UpdateItem": 1}
    assert (checkpoint(a).seq, checkpoint(a).balance) == (9, 920)

    idle, requests = requests_of(lambda: audit.verify_accounts([a]))
    assert idle["entries_read"] == 0 and idle["advanced"] == 0 and idle["broken"] == []
    assert requests == {"BatchGetItem": 1, "Query": 1}

    # Proof that verified entries are not read again: a change to one of them goes
    # unseen by the nightly audit and is found by a full one (run on demand).
    LedgerEntryItem(a, "use:3").update(actions=[LedgerEntryItem.balance_after.set(12345)])
    assert audit.verify_accounts([a])["broken"] == []
    full = audit.verify_accounts([a], full=True)
    assert full["entries_read"] == 9
    assert [(b["problem"], b["seq"]) for b in full["broken"]] == [("balance_chain", 3)]
    assert checkpoint(a).seq == 9


def test_a_tampered_entry_is_found_and_the_checkpoint_never_moves_past_it(world):
    ledger = LedgerService()
    a = world.account(opening=1000)
    use(ledger, a, 2, 3)
    assert audit.verify_accounts([a])["broken"] == []
    assert (checkpoint(a).seq, checkpoint(a).balance) == (3, 980)

    use(ledger, a, 4, 5, 6)  # 970, 960, 950
    # Someone edits entry 5's amount behind the ledger's back: 970 + (-1) is not 960.
    LedgerEntryItem(a, "use:5").update(actions=[LedgerEntryItem.amount.set(-1)])
    night = audit.verify_accounts([a])
    assert [(b["problem"], b["seq"], b["expected"], b["found"]) for b in night["broken"]] == [
        ("balance_chain", 5, 969, 960)]
    assert night["advanced"] == 0 and checkpoint(a).seq == 3  # not even to the good entry 4

    found = alerts(a)
    assert len(found) == 1 and found[0].status == "open" and found[0].message
    assert found[0].data.as_dict()["problem"] == "balance_chain" and int(found[0].data.as_dict()["seq"]) == 5

    use(ledger, a, 7)  # life goes on; the next nights meet the same entry again
    again = audit.verify_accounts([a])
    assert [(b["problem"], b["seq"]) for b in again["broken"]] == [("balance_chain", 5)]
    assert checkpoint(a).seq == 3
    assert len(alerts(a)) == 1  # one alert per problem, not one per night


def test_a_balance_moved_without_an_entry_is_found(world):
    ledger = LedgerService()
    a = world.account(opening=1000)
    use(ledger, a, 2)
    assert audit.verify_accounts([a])["broken"] == []
    AccountItem(a).update(actions=[AccountItem.balance.add(500)])  # 990 + 500, no entry
    night = audit.verify_accounts([a])
    assert [(b["problem"], b["balance"], b["balance_after"]) for b in night["broken"]] == [
        ("balance_mismatch", 1490, 990)]
    assert checkpoint(a).seq == 2


def test_a_posting_between_the_reads_is_left_for_the_next_night(world):
    ledger = LedgerService()
    a = world.account(opening=1000)
    use(ledger, a, 2)
    read_first = audit_store.subject(a)  # the night reads the account (version 2) ...
    use(ledger, a, 3)  # ... a posting lands before it reads the entries
    verdict, moved = audit.verify_account(read_first)
    assert verdict.ok and moved and (checkpoint(a).seq, checkpoint(a).balance) == (2, 990)
    assert audit.verify_accounts([a])["broken"] == [] and (checkpoint(a).seq, checkpoint(a).balance) == (3, 980)


def test_an_entry_the_account_never_took_is_found(world):
    ledger = LedgerService()
    a = world.account(opening=1000)
    use(ledger, a, 2)
    # An entry written without its account update (seq 3 while the account says version 2)
    LedgerEntryItem(a, "forged", seq=3, kind="recharge", amount=5000, balance_after=5990, cause="x", actor="x",
                    posted_at="2999-01-01T00:00:00.000000Z").save()
    night = audit.verify_accounts([a])
    assert [(b["problem"], b["seq"]) for b in night["broken"]] == [("version_mismatch", 2)]
    assert checkpoint(a).seq == 0
