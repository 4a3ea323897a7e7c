"""`signer sign` and `signer token`: sign a URL, or compute and decode single tokens, from
the command line. The library's own command line, which knows nothing of the service:
the installed `signer` command (`service.cli`) hands these two commands to it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signer", description="Sign a TikTok URL, or compute and decode single tokens."
    )
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

    return parser


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
        return _token(args)
    except (SignError, TokenDecodeError) as error:
        print(f"signer: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
