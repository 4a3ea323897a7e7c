"""`python -m sandbox`: run the offline TikTok (the same as `signer sandbox`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.run import DEFAULT_SIGN_URL, run_sandbox
from sandbox.state import MODES


def main(argv: list[str] | None = None, prog: str = "python -m sandbox") -> int:
    """The command; `signer sandbox` (service/cli.py) hands its arguments over as they are."""
    parser = argparse.ArgumentParser(
        prog=prog, description="An offline TikTok LIVE for building bots."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on (0: any)")
    parser.add_argument("--mode", choices=MODES, default="fetch", help="how im/fetch answers")
    parser.add_argument("--script", type=Path, help="JSON file of events to play to each socket")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="random events a second per socket (0: none)"
    )
    parser.add_argument("--sign-url", default=DEFAULT_SIGN_URL, help="your signer, for the hints")
    parser.add_argument("--advertise-host", help="host written into URLs (default: --host)")
    args = parser.parse_args(argv)
    try:
        run_sandbox(
            args.host,
            args.port,
            args.mode,
            args.script,
            args.rate,
            sign_url=args.sign_url,
            advertise_host=args.advertise_host,
        )
    except ValueError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"sandbox: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
