"""`signer`: sign a URL, or compute and decode single tokens, from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import SignerSettings
from .errors import SignError
from .models import SignRequest
from .signer import Signer
from .tokenerrors import TokenDecodeError
from .tokens import decode_token
from .xbogus import encode_xbogus, verify_xbogus
from .xgnarly import encode_xgnarly, verify_xgnarly
from .xttparams import encode_xtt_params

__all__ = ["main"]


def _header(text: str) -> tuple[int, int]:
    try:
        first, second = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected two bytes as H1,H2, e.g. 65,14") from None
    if not (0 <= first <= 255 and 0 <= second <= 255):
        raise argparse.ArgumentTypeError("header bytes are 0..255")
    return first, second


def _u32(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("must be an unsigned 32-bit integer")
    return value


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
    tiers = ["free", "api_key"]

    users = commands.add_parser("users", help="add, list and re-tier users")
    user_actions = users.add_subparsers(dest="action", required=True)
    create_user = user_actions.add_parser("create", help="add a user", parents=[as_json])
    create_user.add_argument("email")
    create_user.add_argument("--tier", choices=tiers, default="free", help="default: free")
    create_user.add_argument(
        "--if-missing", action="store_true", help="a user who exists already is no error"
    )
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

    sign = commands.add_parser("sign", help="sign a TikTok URL")
    sign.add_argument("url")
    sign.add_argument("--user-agent", help="sign for this User-Agent instead of the profile's")
    sign.add_argument("--ms-token", help="the caller's msToken, passed through")
    sign.add_argument("--engine", choices=["browser", "native"], help="default: SIGNER_ENGINE")
    sign.add_argument("--json", action="store_true", help="print every field as JSON")

    token = commands.add_parser("token", help="compute or decode a single token")
    kinds = token.add_subparsers(dest="kind", required=True)
    for name in ("xbogus", "xgnarly"):
        sub = kinds.add_parser(name, help=f"print the {name} token alone")
        sub.add_argument("--query", required=True)
        sub.add_argument("--user-agent", required=True)
        sub.add_argument("--timestamp", required=True, type=_u32)
        sub.add_argument("--canvas", required=True, type=_u32)
        sub.add_argument("--body", default="")
        if name == "xbogus":
            sub.add_argument("--header", required=True, type=_header, help="H1,H2")
    decode = kinds.add_parser("decode", help="decode any token to JSON")
    decode.add_argument("token")
    decode.add_argument("--query")
    decode.add_argument("--user-agent")
    decode.add_argument("--body", default="")
    params = kinds.add_parser("xttparams", help="print the x-tt-params value of a query")
    params.add_argument("query")

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


def _service(args: argparse.Namespace) -> int:
    # The service layers are imported only here: the signing library itself knows nothing
    # of HTTP or queues, and this command line is where the layers are put together.
    if args.command == "up":
        from stack import run_up

        return run_up(Path(args.state).resolve(), args.port, args.workers)
    if args.command == "api":
        from api.server import ApiSettings, serve
        from workers import QueueSettings

        settings = ApiSettings()
        updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        asyncio.run(serve(settings.model_copy(update=updates), QueueSettings()))
        return 0
    from workers.run import run_workers

    if args.processes < 1:
        print("signer: --processes must be at least 1", file=sys.stderr)
        return 2
    return run_workers(args.processes)


def _accounts(args: argparse.Namespace) -> int:
    # Without DATABASE_URL, the database `signer up` runs (its state folder records it),
    # so a key can be issued while the stack runs with nothing to export.
    from stack.recovery import recorded_database_url

    recorded = None if os.environ.get("DATABASE_URL") else recorded_database_url(Path(args.state))
    if recorded:
        os.environ["DATABASE_URL"] = recorded
    status = _account_command(args)
    if status != 0 and recorded:
        print(
            f"signer: that is the database of `signer up --state {args.state}`: "
            "is it running? (`make run`)",
            file=sys.stderr,
        )
    return status


def _account_command(args: argparse.Namespace) -> int:
    # Imported only here, as the service layers are in _service.
    from api import admin_cli

    if args.command == "migrate":
        return admin_cli.migrate_command()
    if args.command == "usage":
        return admin_cli.usage(args.user, args.days, as_json=args.json)
    if args.command == "users":
        if args.action == "create":
            return admin_cli.users_create(
                args.email, args.tier, as_json=args.json, if_missing=args.if_missing
            )
        if args.action == "set-tier":
            return admin_cli.users_set_tier(args.email, args.tier, as_json=args.json)
        return admin_cli.users_list(as_json=args.json)
    if args.action == "create":
        return admin_cli.keys_create(
            args.user, args.name, args.per_minute, args.per_day, as_json=args.json
        )
    if args.action == "list":
        return admin_cli.keys_list(args.user, as_json=args.json)
    return admin_cli.keys_revoke(args.prefix)


async def _sign(args: argparse.Namespace) -> int:
    settings = SignerSettings()
    request = SignRequest(args.url, user_agent=args.user_agent, ms_token=args.ms_token)
    async with Signer(settings, engine=args.engine) as signer:
        result = await signer.sign(request)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.signed_url)
        print(f"User-Agent: {result.user_agent}", file=sys.stderr)
    return 0


def _decode(args: argparse.Namespace) -> int:
    kind, fields = decode_token(args.token)
    out: dict[str, object] = {"kind": kind, "fields": fields}
    if args.query is not None and args.user_agent is not None:
        if kind == "x-bogus":
            out["valid"] = verify_xbogus(args.token, args.query, args.user_agent, args.body)
        elif kind == "x-gnarly":
            out["valid"] = verify_xgnarly(args.token, args.query, args.user_agent, args.body)
    print(json.dumps(out, indent=2))
    return 0


def _token(args: argparse.Namespace) -> int:
    if args.kind == "xbogus":
        print(
            encode_xbogus(
                args.query, args.user_agent, args.timestamp, args.canvas, args.header, args.body
            )
        )
    elif args.kind == "xgnarly":
        print(encode_xgnarly(args.query, args.user_agent, args.timestamp, args.canvas, args.body))
    elif args.kind == "xttparams":
        print(encode_xtt_params(args.query))
    else:
        return _decode(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "sign":
            return asyncio.run(_sign(args))
        if args.command in ("api", "worker", "up"):
            return _service(args)
        if args.command in ("migrate", "users", "keys", "usage"):
            return _accounts(args)
        return _token(args)
    except (SignError, TokenDecodeError) as error:
        print(f"signer: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
