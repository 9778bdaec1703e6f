"""Console admins from the command line (docs/console.md, "Accounts").

    python -m cli.admins create-owner --company C --email E --name N [--company-name X]
                                      [--property P ...] [--password-stdin]
        the company (made if absent) holds properties P; E becomes its owner (sees all of
        them). Without --password-stdin a random password is made and printed once.
    python -m cli.admins create-user --company C --email E --name N --role operator|finance|viewer
                                     [--property P ...] [--password-stdin]
    python -m cli.admins add-property --company C --property P   the company now holds P
    python -m cli.admins grant --email E --property P [...]      a non-owner admin may see P
    python -m cli.admins reset-password --email E [--password-stdin]
        a forgotten password: sets a new one, ends every session, lifts a lock

Uses the deployment's AWS credentials (DynamoDB): AWS_REGION, FEIKONG_STAGE, and
AWS_ENDPOINT_URL locally. Each change is written to the company's action log with the
actor "cli".
"""

from __future__ import annotations

import argparse
import secrets
import sys

from core.domain.errors import FeikongError


def _password(args) -> tuple[str, bool]:
    """The password from stdin (first line), or a new random one (then shown)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return secrets.token_urlsafe(12), True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.admins", description="控制台管理员")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("create-owner", "create-user"):
        p = sub.add_parser(name)
        p.add_argument("--company", required=True)
        p.add_argument("--email", required=True, help="the login name")
        p.add_argument("--name", required=True, help="shown in the console and the action log")
        p.add_argument("--property", action="append", default=[])
        p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
        if name == "create-owner":
            p.add_argument("--company-name", default="")
        else:
            p.add_argument("--role", required=True, choices=["operator", "finance", "viewer"])
    p = sub.add_parser("add-property")
    p.add_argument("--company", required=True)
    p.add_argument("--property", required=True)
    p = sub.add_parser("grant")
    p.add_argument("--email", required=True)
    p.add_argument("--property", action="append", required=True)
    p = sub.add_parser("reset-password")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    args = parser.parse_args(argv)

    from core.services.admin_auth import AdminAuth

    auth = AdminAuth()
    try:
        if args.command in ("create-owner", "create-user"):
            password, made = _password(args)
            if args.command == "create-owner":
                auth.ensure_company(args.company, args.company_name)
            for pid in args.property:
                if args.command == "create-owner":
                    auth.add_property(args.company, pid)
            user = auth.create_admin(args.company, args.email, args.name,
                                     "owner" if args.command == "create-owner" else args.role, password,
                                     tuple(args.property))
            print(f"created: {user.admin_id} ({user.role}) of company {user.company_id}")
            if made:
                print(f"password: {password}")
                print("Change it after the first login (修改密码).")
        elif args.command == "add-property":
            c = auth.add_property(args.company, args.property)
            print(f"company {c.company_id} holds: {', '.join(c.property_ids)}")
        elif args.command == "grant":
            user = auth.grant(args.email, tuple(args.property))
            shown = "all of the company's (owner)" if user.role == "owner" else ", ".join(user.property_ids)
            print(f"{user.admin_id} sees: {shown}")
        else:
            password, made = _password(args)
            auth.reset_password(args.email, password)
            print(f"password reset: {args.email}; every session of it ended")
            if made:
                print(f"password: {password}")
    except FeikongError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
