"""`signer`: the service's command line.

`api`, `worker` and `up` run the service's processes; `migrate`, `users`, `keys` and
`usage` manage the accounts in Postgres; `sign` and `token` are the signing library's
own commands (`signer.cli`) and `sandbox` the offline TikTok's (`sandbox/__main__.py`),
handed over as they are. The settings are read here, once (`service.environment`), and
every unknown `SIGNER_*` variable is reported at start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from accounts.tiers import TIERS

from .stack.recovery import StackRecord

if TYPE_CHECKING:
    from .environment import Environment

__all__ = ["main"]

# Each command imports what it runs, and only that, when it runs: every process of the
# service starts as `signer ...`, and `signer up` would otherwise spend most of a second
# loading the API, the console and the TikTok client before starting its first server.

# Handed to the library's command line (signer/cli.py) as they are.
LIBRARY_COMMANDS = {
    "sign": "sign a TikTok URL (the library's `signer sign`)",
    "token": "compute or decode a single token (the library's `signer token`)",
}
# Handed to the offline TikTok's command line (sandbox/__main__.py) as they are.
SANDBOX_COMMAND = "sandbox"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _account_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`migrate`, `users`, `keys` and `usage`: the accounts in Postgres (`DATABASE_URL`,
    else the database of the `signer up` whose state folder is `--state`)."""
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state",
        default=".state",
        help="without DATABASE_URL: use the database of `signer up --state` (default .state)",
    )
    commands.add_parser(
        "migrate", help="apply pending database migrations (DATABASE_URL)", parents=[state]
    )
    as_json = argparse.ArgumentParser(add_help=False, parents=[state])
    as_json.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tiers = list(TIERS)

    users = commands.add_parser("users", help="add, list and re-tier users")
    user_actions = users.add_subparsers(dest="action", required=True)
    create_user = user_actions.add_parser("create", help="add a user", parents=[as_json])
    create_user.add_argument("email")
    create_user.add_argument("--tier", choices=tiers, default="free", help="default: free")
    create_user.add_argument(
        "--if-missing", action="store_true", help="a user who exists already is no error"
    )
    create_user.add_argument(
        "--admin", action="store_true", help="an operator; prints a link to set a password"
    )
    invite = user_actions.add_parser(
        "invite", help="invite to the console (mails a link)", parents=[state]
    )
    invite.add_argument("email")
    invite.add_argument("--tier", choices=tiers, default="free", help="default: free")
    user_actions.add_parser("list", help="list every user", parents=[as_json])
    set_tier = user_actions.add_parser("set-tier", help="move a user to a tier", parents=[as_json])
    set_tier.add_argument("email")
    set_tier.add_argument("tier", choices=tiers)

    keys = commands.add_parser("keys", help="issue, list and revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create_key = key_actions.add_parser(
        "create", help="issue a key (shown once)", parents=[as_json]
    )
    create_key.add_argument("--user", required=True, help="the owner's email")
    create_key.add_argument("--name", required=True, help="what the key is for")
    create_key.add_argument("--per-minute", type=_positive, help="own limit (default: tier's)")
    create_key.add_argument("--per-day", type=_positive, help="own limit (default: tier's)")
    list_keys = key_actions.add_parser("list", help="list keys (prefixes only)", parents=[as_json])
    list_keys.add_argument("--user", help="only this user's keys")
    revoke = key_actions.add_parser("revoke", help="revoke a key", parents=[state])
    revoke.add_argument("prefix", help="the key's prefix, like sk_AbCd1234")

    usage = commands.add_parser("usage", help="requests per UTC day", parents=[as_json])
    usage.add_argument("--user", help="only this user's requests")
    usage.add_argument("--days", type=_positive, default=7, help="days back (default 7)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in LIBRARY_COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    commands.add_parser(SANDBOX_COMMAND, help="run the offline TikTok for bots", add_help=False)
    api = commands.add_parser("api", help="run the HTTP API (SIGNER_API_HOST, SIGNER_API_PORT)")
    api.add_argument("--host", help="listen address (default SIGNER_API_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="listen port (default SIGNER_API_PORT or 8080)")
    worker = commands.add_parser("worker", help="run signing workers on this host")
    worker.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    up = commands.add_parser("up", help="run the whole stack here (private Redis and Postgres)")
    up.add_argument("--port", type=int, default=8080, help="API port (default 8080; 0: any)")
    up.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    up.add_argument(
        "--state", default=".state", help="folder of the private Redis and Postgres (.state)"
    )
    _account_parsers(commands)
    return parser


def _service(env: Environment, args: argparse.Namespace) -> int:
    if args.command == "api":
        from .api_process import serve
        from .environment import warn_unknown
        from .logs import configure_logging
        from .loop import run

        updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        env.api = env.api.model_copy(update=updates)
        configure_logging(env.log)
        warn_unknown()
        return run(serve(env))
    if args.processes < 1:
        print("signer: --processes must be at least 1", file=sys.stderr)
        return 2
    from .workers_process import run_workers

    return run_workers(env, args.processes)


def _accounts(env: Environment, args: argparse.Namespace) -> int:
    # Without DATABASE_URL, the database `signer up` runs (its state folder records it),
    # so a key can be issued while the stack runs with nothing to export.
    from migrations.settings import DatabaseSettings

    record = None if os.environ.get("DATABASE_URL") else StackRecord.load(Path(args.state))
    recorded = record.database_url if record is not None else ""
    if recorded:
        env.database = DatabaseSettings(DATABASE_URL=recorded)
        # ... and the console links it prints or mails point at that stack's API.
        if record is not None and record.api and not env.console.base_url:
            env.console = env.console.model_copy(update={"base_url": record.api})
    status = _account_command(env, args)
    if status != 0 and recorded:
        print(
            f"signer: that is the database of `signer up --state {args.state}`: "
            "is it running? (`make run`)",
            file=sys.stderr,
        )
    return status


def _account_command(env: Environment, args: argparse.Namespace) -> int:
    from . import admin_cli, console_cli

    if args.command == "migrate":
        return admin_cli.migrate_command(env)
    if args.command == "usage":
        return admin_cli.usage(env, args.user, args.days, as_json=args.json)
    if args.command == "users":
        if args.action == "create" and args.admin:
            return console_cli.users_create_admin(
                env, args.email, args.tier, if_missing=args.if_missing
            )
        if args.action == "invite":
            return console_cli.users_invite(env, args.email, args.tier)
        if args.action == "create":
            return admin_cli.users_create(
                env, args.email, args.tier, as_json=args.json, if_missing=args.if_missing
            )
        if args.action == "set-tier":
            return admin_cli.users_set_tier(env, args.email, args.tier, as_json=args.json)
        return admin_cli.users_list(env, as_json=args.json)
    if args.action == "create":
        return admin_cli.keys_create(
            env, args.user, args.name, args.per_minute, args.per_day, as_json=args.json
        )
    if args.action == "list":
        return admin_cli.keys_list(env, args.user, as_json=args.json)
    return admin_cli.keys_revoke(env, args.prefix)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in LIBRARY_COMMANDS:
        from signer import cli as library_cli

        return library_cli.main(arguments)
    if arguments and arguments[0] == SANDBOX_COMMAND:
        from sandbox.__main__ import main as sandbox_main  # only this command loads it

        return sandbox_main(arguments[1:], prog=f"signer {SANDBOX_COMMAND}")
    args = _parser().parse_args(arguments)
    if args.command == "up":  # its processes read the environment, not it
        from .stack import run_up

        return run_up(Path(args.state).resolve(), args.port, args.workers)
    from .environment import Environment

    env = Environment()
    if args.command in ("api", "worker"):
        return _service(env, args)
    return _accounts(env, args)


if __name__ == "__main__":
    sys.exit(main())
