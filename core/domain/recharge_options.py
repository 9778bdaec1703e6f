"""The recharge amounts a tenant is offered: presets within the payment limits."""

from __future__ import annotations

from core.domain.payments import Limits

PRESETS_FEN = (2000, 5000, 10000, 20000, 50000)  # 20 / 50 / 100 / 200 / 500 yuan


def presets(limits: Limits, candidates: tuple[int, ...] = PRESETS_FEN) -> list[int]:
    """The candidates inside [min, max] (a deployment with other limits loses the ones outside)."""
    return [a for a in candidates if limits.min_fen <= a <= limits.max_fen]
