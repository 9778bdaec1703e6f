"""Tariff plans from the command line.

    python -m cli.tariffs preview PLAN.json READINGS.json     rate readings against a plan (电价试算), offline,
        [--rated-kw KW] [--max-gap-hours H] [--json]         exactly as production ingest would judge them
    python -m cli.tariffs check PLAN.json                     validate a plan document
    python -m cli.tariffs import --property P PLAN.json       store a plan (AWS_ENDPOINT_URL / AWS credentials)
    python -m cli.tariffs export --property P PLAN_ID         print a stored plan

READINGS.json: [{"read_at": "2026-11-24T07:30:00+08:00", "total": "100.00",
                 "registers": {"peak": "60.00", ...}, "seq": 1, "received_at": "..."}, ...]
in the order the cloud receives them (registers, seq and received_at optional).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from core.domain.errors import FeikongError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.tariffs", description="电价方案工具")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview")
    p.add_argument("plan")
    p.add_argument("readings")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--rated-kw", default=None, help="the meter's rated power for the jump rule (default 10)")
    p.add_argument("--max-gap-hours", type=float, default=None,
                   help="a longer interval is a gap anomaly (default FEIKONG_MAX_GAP_HOURS or 6)")
    c = sub.add_parser("check")
    c.add_argument("plan")
    i = sub.add_parser("import")
    i.add_argument("--property", required=True)
    i.add_argument("--actor", default="cli")
    i.add_argument("plan")
    e = sub.add_parser("export")
    e.add_argument("--property", required=True)
    e.add_argument("plan_id")
    args = parser.parse_args(argv)
    from core.domain.tariff import parse_plan
    from core.services import tariffs

    try:
        if args.command == "preview":
            result = tariffs.preview(
                _load(args.plan), _load(args.readings), args.rated_kw or tariffs.PREVIEW_RATED_KW,
                timedelta(hours=args.max_gap_hours) if args.max_gap_hours else None)
            if args.json:
                print(json.dumps(result, ensure_ascii=False, indent=2))
            else:
                _print_preview(result)
        elif args.command == "check":
            plan = parse_plan(_load(args.plan))
            print(f"ok: {plan.plan_id} ({plan.name}), {len(plan.versions)} version(s)")
        elif args.command == "import":
            plan = tariffs.import_plan(args.property, _load(args.plan), args.actor)
            print(f"imported {plan.plan_id} into {args.property}")
        else:
            print(json.dumps(tariffs.export_plan(args.property, args.plan_id), ensure_ascii=False, indent=2))
    except FeikongError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    return 0


def _load(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: cannot read {path}: {err}") from None


def _print_preview(result: dict) -> None:
    print(f"方案 {result['plan_id']}，单位 {result['unit']}")
    anomalies = {a["seq"]: a for a in result["anomalies"]}
    charges = {c["seq"]: c for c in result["charges"]}
    for step in result["readings"]:
        seq, outcome = step["seq"], step["outcome"]
        if outcome == "billed":
            c = charges[seq]
            print(f"{c['from']} → {c['to']}  用量 {c['quantity']}  计费 {c['yuan']} 元（精确 {c['exact_yuan']}）")
            for line in c["lines"]:
                print(f"    {line['label']:<10} {line['quantity']:>14} × {line['unit_price']:<8} = {line['amount']}")
        elif seq in anomalies and outcome == anomalies[seq]["kind"]:
            a = anomalies[seq]
            extra = f"；用量 {a['quantity']}，审核通过后计费 {a['proposed_yuan']} 元" if "proposed_yuan" in a else "，不计费"
            print(f"第 {seq} 条读数 {a['read_at']}  异常：{a['name']}（{a['detail']}）{extra}")
        elif outcome == "baseline":
            print(f"第 {seq} 条读数：起始读数")
        elif outcome == "duplicate":
            print(f"第 {seq} 条读数：重复或已被更新的读数覆盖，忽略")
    print(f"合计 {result['total_yuan']} 元，未满 1 分的余数 {result['remainder_fen']} 分（计入下一次）")


if __name__ == "__main__":
    sys.exit(main())
