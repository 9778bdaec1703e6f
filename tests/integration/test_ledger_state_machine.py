"""A hypothesis state machine drives the ledger through random credits, debits, refunds,
duplicates, limit changes and two service instances with their own (possibly stale)
memory, against the emulator. Invariants: the balance is what a plain model computes,
equals the sum of the entries, and no duplicate is ever applied.

The model is the test's own, written from the table in docs/ledger.md (direction and
lowest balance of each kind); it uses nothing of core.domain.ledger's rules, so a wrong
sign or floor in the code under test cannot also be the expected value."""

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core.domain.errors import InsufficientFunds
from core.domain.ledger import PostingRequest
from core.services.ledger import LedgerService
from core.store import directory as store
from testkit.builders import World

# kind -> (direction, lowest balance it may leave: "none", "overdraft" = -limit, or "zero")
MODEL = {
    "recharge": (+1, "none"), "adjust_credit": (+1, "none"),
    "energy": (-1, "none"), "water": (-1, "none"),  # usage already delivered: always recorded
    "fee": (-1, "overdraft"), "adjust_debit": (-1, "overdraft"),
    "refund": (-1, "zero"), "withdrawal": (-1, "zero"),  # money paid out never creates debt
}
KINDS = sorted(MODEL)


def model_allows(kind: str, amount: int, balance: int, overdraft: int) -> tuple[bool, int]:
    """(allowed, signed amount) by the model alone."""
    direction, rule = MODEL[kind]
    after = balance + direction * amount
    lowest = {"none": None, "overdraft": -overdraft, "zero": 0}[rule]
    return lowest is None or after >= lowest, direction * amount


class LedgerMachine(RuleBasedStateMachine):
    @initialize(opening=st.integers(-5000, 50_000), overdraft=st.integers(0, 10_000))
    def open(self, opening, overdraft):
        self.world = World()
        self.account = self.world.account(opening=opening, overdraft=overdraft)
        self.services = [LedgerService(), LedgerService()]
        self.balance = opening
        self.overdraft = overdraft
        self.applied: dict[str, PostingRequest] = {}
        self.n = 0

    def _request(self, kind, amount):
        self.n += 1
        return PostingRequest.build(account_id=self.account, entry_id=f"e:{self.n}", kind=kind,
                                    amount=amount, cause="hypothesis", actor="machine")

    @rule(kind=st.sampled_from(KINDS), amount=st.integers(1, 30_000), which=st.integers(0, 1))
    def post(self, kind, amount, which):
        req = self._request(kind, amount)
        allowed, signed = model_allows(kind, amount, self.balance, self.overdraft)
        try:
            entry = self.services[which].post_request(req)
        except InsufficientFunds:
            assert not allowed, f"refused a posting the rules allow: {req}"
            return
        assert allowed, f"applied a posting the rules refuse: {req}"
        assert not entry.duplicate
        self.balance += signed
        assert entry.amount == signed and entry.balance_after == self.balance
        self.applied[req.entry_id] = req

    @precondition(lambda self: self.applied)
    @rule(data=st.data(), which=st.integers(0, 1))
    def duplicate(self, data, which):
        entry_id = data.draw(st.sampled_from(sorted(self.applied)))
        entry = self.services[which].post_request(self.applied[entry_id])
        assert entry.duplicate

    @rule(overdraft=st.integers(0, 10_000))
    def change_overdraft(self, overdraft):
        store.set_account_settings(self.account, overdraft_limit=overdraft)
        self.overdraft = overdraft

    @invariant()
    def balance_matches_model(self):
        if hasattr(self, "account"):
            assert self.services[0].balance(self.account) == self.balance

    def teardown(self):
        if hasattr(self, "account"):
            result = self.services[0].verify(self.account)
            assert result["ok"], result
            assert result["entries"] == 1 + len(self.applied)
            assert result["sum_entries"] == self.balance


LedgerMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerMachine = LedgerMachine.TestCase
