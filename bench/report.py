"""How every bench ends: one JSON object on its last line with its figures, its targets,
which of them were missed and `"pass"`; the exit code is 0 when every target is met and
MISSED (3) when one is not, so `make bench` stops on it. A crash exits 1 (Python's own
code) and an emulator that cannot start exits 2 (infra/local/stack.py)."""

from __future__ import annotations

import json
import math

MISSED = 3


def finish(result: dict, targets: dict[str, tuple[str, bool]]) -> int:
    """targets: name -> (the target as people read it, whether this run met it).
    Correctness checks (exactly once, balances exact) are targets too."""
    missed = [name for name, (_, met) in targets.items() if not met]
    result = {**result, "targets": {name: text for name, (text, _) in targets.items()}, "missed": missed,
              "pass": not missed}
    print(json.dumps(result, ensure_ascii=False))
    return 0 if not missed else MISSED


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): with 50 samples, p99 is the slowest one."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def with_pay_stack(run, args) -> int:
    """Run `run(args, stack)` against an emulator and the local payment stack (WeChat Pay and
    WeChat API emulators, the notification function behind a local API Gateway)."""
    from infra.local.paystack import PayStack
    from infra.local.stack import emulator_for_script

    with emulator_for_script():
        stack = PayStack().start()
        stack.apply_env()
        try:
            return run(args, stack)
        finally:
            stack.stop()
