"""A site's signing keys from the command line (docs/bridge.md, "Site secrets and their rotation").

    python -m cli.sites rotate SITE_ID --actor WHO   a new key; the old one still verifies.
                                                     Prints the bridge config lines to install.
    python -m cli.sites finish SITE_ID --actor WHO   end the rotation: the old key is refused
    python -m cli.sites status SITE_ID               is a rotation under way?

Uses the deployment's AWS credentials (Secrets Manager, DynamoDB): AWS_REGION,
FEIKONG_STAGE, and AWS_ENDPOINT_URL locally. Every step is recorded as a `site_secret`
event on the site, with the actor.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.domain.errors import FeikongError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.sites", description="网关密钥轮换")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("rotate", "finish"):
        p = sub.add_parser(name)
        p.add_argument("site_id")
        p.add_argument("--actor", required=True, help="who does this (recorded in the site's events)")
    s = sub.add_parser("status")
    s.add_argument("site_id")
    args = parser.parse_args(argv)
    from core.services import sites

    try:
        if args.command == "rotate":
            keys = sites.rotate(args.site_id, args.actor)
            print(f"rotated: site {args.site_id} signs with a new key; the old one verifies until `finish`.")
            print("Put these two lines in the site's bridge config and restart the bridge:")
            print(f"secret: {json.dumps(keys.current)}")
            print(f"previous_secret: {json.dumps(keys.previous)}")
        elif args.command == "finish":
            sites.finish(args.site_id, args.actor)
            print(f"finished: site {args.site_id}'s previous key is no longer accepted. "
                  "Remove previous_secret from its bridge config.")
        else:
            print(json.dumps(sites.status(args.site_id), ensure_ascii=False))
    except FeikongError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
