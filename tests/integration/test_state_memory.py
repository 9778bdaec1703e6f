"""Warm processes remember account and meter states in bounded, least-recently-used
memories (FEIKONG_STATE_CACHE_SIZE), and forgetting one costs a read, never a wrong
balance. Worked by hand: 1.0 yuan/kWh, 10.00 yuan opening, 1 kWh per reading."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.rating import MeterReading
from core.services.cache import DEFAULT_STATE_CACHE_SIZE, state_cache_size
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from testkit.builders import Clock

T0 = datetime(2026, 11, 24, 2, tzinfo=UTC)
NOW = T0 + timedelta(days=1)  # the cloud's clock, after the readings


def test_the_bound_comes_from_the_environment(setenv):
    setenv("FEIKONG_STATE_CACHE_SIZE", None)
    assert state_cache_size() == DEFAULT_STATE_CACHE_SIZE == 10_000
    setenv("FEIKONG_STATE_CACHE_SIZE", "2500")
    assert state_cache_size() == 2500 and LedgerService()._states.maxsize == 2500
    for bad in ("0", "-3", "lots"):
        setenv("FEIKONG_STATE_CACHE_SIZE", bad)
        with pytest.raises(ValueError, match="FEIKONG_STATE_CACHE_SIZE"):
            state_cache_size()


def test_the_ledger_forgets_the_least_recently_used_account_and_still_posts_right(world):
    ledger = LedgerService(cache_size=2)
    a, b, c = (world.account(opening=1000) for _ in range(3))
    for i, acct in enumerate((a, b, a, c)):  # a is used again before c comes, so b is the one forgotten
        ledger.post(account_id=acct, entry_id=f"use:{i}", kind="energy", amount=10, cause="t", actor="t")
    assert set(ledger._states) == {a, c}
    assert ledger.post(account_id=b, entry_id="use:9", kind="energy", amount=10, cause="t", actor="t").balance_after == 980
    assert set(ledger._states) == {b, c}
    assert [ledger.balance(x) for x in (a, b, c)] == [980, 980, 990]


def test_ingest_keeps_at_most_the_bound_of_meters(metered):
    w = metered
    ingest = Ingest(clock=Clock(NOW), cache_size=2)
    meters = [w.meter(w.account(opening=1000)) for _ in range(3)]
    results = [ingest.reading(w.site.site_id, MeterReading(m, seq, T0 + timedelta(hours=seq), Decimal(seq)))
               for seq in (1, 2) for m in meters]
    assert results == ["baseline"] * 3 + ["billed"] * 3
    assert len(ingest._meters) == 2 and len(ingest.ledger._states) == 2
    assert set(ingest._meters) == set(meters[1:])
    # every reading after the baseline was billed once: 1 kWh at 1.0 yuan
    assert [ingest.ledger.balance(ingest._meter(m).account_id) for m in meters] == [900, 900, 900]
