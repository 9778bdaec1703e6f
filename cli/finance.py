"""Finance from the command line (docs/finance.md).

    python -m cli.finance backfill PROPERTY_ID [PROPERTY_ID ...]
        write the journal (订单流水) rows of everything the properties' accounts already hold:
        existing data from before the journal's stream consumer, or rows it failed on. Rows
        have deterministic keys, so running it again (or while the consumer runs) changes nothing.
    python -m cli.finance reconcile YYYY-MM-DD
        reconcile a day's WeChat Pay trade bill again (what the daily function does).

Uses the deployment's AWS credentials: AWS_REGION, FEIKONG_STAGE, and AWS_ENDPOINT_URL locally.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.domain.errors import FeikongError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.finance", description="财务：订单流水回填、对账")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backfill")
    b.add_argument("property_ids", nargs="+")
    r = sub.add_parser("reconcile")
    r.add_argument("day")
    args = parser.parse_args(argv)
    from core.services.finance import Finance

    finance = Finance()
    try:
        if args.command == "backfill":
            for pid in args.property_ids:
                print(f"{pid}: {finance.backfill(pid)} rows written")
        else:
            print(json.dumps(finance.reconcile(args.day), ensure_ascii=False))
    except FeikongError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
