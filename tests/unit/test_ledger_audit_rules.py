"""The ledger audit's rule on hand-worked chains: an account opened with 10.00 yuan
(seq 1, +1000 fen, balance 1000) that then used 0.10 yuan twice (seq 2 and 3, -10 each:
balances 990 and 980)."""

from core.domain.audit import START, Checkpoint, check_increment
from core.domain.ledger import Entry, EntryKind


def entry(seq: int, amount: int, balance_after: int, minute: int | None = None) -> Entry:
    kind = EntryKind.OPENING if seq == 1 else EntryKind.ENERGY
    return Entry("a1", f"e{seq}", seq, kind, amount, balance_after, "test", "tester",
                 f"2026-11-28T08:{minute if minute is not None else seq:02d}:00.000000Z")


OPENING, USE1, USE2 = entry(1, 1000, 1000), entry(2, -10, 990), entry(3, -10, 980)
AT_2 = Checkpoint(2, 990, USE1.posted_at)


def test_a_clean_chain_from_the_start_moves_the_checkpoint_to_its_last_entry():
    v = check_increment(START, [OPENING, USE1, USE2], balance=980, version=3)
    assert v.ok and v.read == 3 and v.checkpoint == Checkpoint(3, 980, USE2.posted_at)


def test_from_a_checkpoint_only_the_entries_after_it_count():
    v = check_increment(AT_2, [USE2], balance=980, version=3)
    assert v.ok and v.read == 1 and v.checkpoint == Checkpoint(3, 980, USE2.posted_at)


def test_nothing_new_keeps_the_checkpoint_when_the_balance_still_matches():
    v = check_increment(AT_2, [], balance=990, version=2)
    assert v.ok and v.read == 0 and v.checkpoint == AT_2


def test_a_balance_after_that_is_not_previous_plus_amount_is_found_and_the_checkpoint_stays():
    tampered = entry(3, -10, 985)  # 990 - 10 is 980
    v = check_increment(AT_2, [tampered], balance=985, version=3)
    assert not v.ok and (v.problem, v.seq) == ("balance_chain", 3) and v.checkpoint == AT_2
    assert v.detail["expected"] == 980 and v.detail["found"] == 985


def test_an_amount_changed_behind_the_ledger_breaks_the_chain_too():
    v = check_increment(AT_2, [entry(3, -1, 980)], balance=980, version=3)
    assert (v.ok, v.problem, v.seq) == (False, "balance_chain", 3)


def test_a_missing_entry_is_a_break_in_the_sequence():
    v = check_increment(AT_2, [entry(4, -10, 970)], balance=970, version=4)
    assert (v.ok, v.problem, v.seq, v.detail["expected"]) == (False, "seq_break", 4, 3)


def test_entries_must_be_in_strictly_increasing_time():
    v = check_increment(AT_2, [entry(3, -10, 980, minute=2)], balance=980, version=3)
    assert (v.ok, v.problem) == (False, "time_order")


def test_an_account_version_past_the_last_entry_means_entries_are_missing():
    v = check_increment(AT_2, [USE2], balance=980, version=4)
    assert (v.ok, v.problem, v.seq) == (False, "version_mismatch", 4)


def test_a_balance_that_is_not_the_last_balance_after_is_found():
    v = check_increment(AT_2, [USE2], balance=999_999, version=3)
    assert (v.ok, v.problem, v.detail) == (False, "balance_mismatch", {"balance": 999_999, "balance_after": 980})


def test_a_version_behind_the_checkpoint_is_found():
    v = check_increment(AT_2, [], balance=1000, version=1)
    assert (v.ok, v.problem) == (False, "version_behind")
