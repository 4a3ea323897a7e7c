"""The last gate before a signature leaves `Signer`: it must decode and match its request."""

from __future__ import annotations

from collections.abc import Sequence

from .engine import EngineOutput
from .errors import SelfCheckFailed
from .tokenerrors import TokenDecodeError
from .urls import PreparedRequest, append_tokens
from .xbogus import verify_xbogus
from .xgnarly import verify_xgnarly_many
from .xttparams import decode_xtt_params

__all__ = ["check_output", "check_outputs"]


def check_output(request: PreparedRequest, output: EngineOutput) -> None:
    """Raise `SelfCheckFailed` unless every token covers exactly this request."""
    (failure,) = check_outputs([(request, output)])
    if failure is not None:
        raise failure


def check_outputs(
    pairs: Sequence[tuple[PreparedRequest, EngineOutput]],
) -> list[SelfCheckFailed | None]:
    """Check a batch; one entry per pair, `None` where the output is sound.

    X-Gnarly, the costly part, is decrypted for the whole batch at once.
    """
    failures: list[SelfCheckFailed | None] = [_check_cheap(r, o) for r, o in pairs]
    pending = [index for index, failure in enumerate(failures) if failure is None]
    verdicts = verify_xgnarly_many(
        [
            (o.x_gnarly, o.query, o.user_agent, r.body)
            for r, o in (pairs[index] for index in pending)
        ]
    )
    for index, valid in zip(pending, verdicts, strict=True):
        if not valid:
            failures[index] = SelfCheckFailed(
                "X-Gnarly does not decode to this query, body and User-Agent"
            )
    return failures


def _check_cheap(request: PreparedRequest, output: EngineOutput) -> SelfCheckFailed | None:
    expected_agent = request.user_agent or output.navigator.user_agent
    if output.user_agent != expected_agent:
        return SelfCheckFailed("the engine signed with a different User-Agent than requested")
    expected_query = append_tokens(
        request.query_for(output.navigator), output.verify_fp, request.ms_token
    )
    if output.query != expected_query:
        return SelfCheckFailed("the signed query differs from the request's query")
    if request.include_verify_fp and not output.verify_fp:
        return SelfCheckFailed("verifyFp was requested but not produced")
    if not verify_xbogus(output.x_bogus, output.query, output.user_agent, request.body):
        return SelfCheckFailed("X-Bogus does not decode to this query, body and User-Agent")
    try:
        params = decode_xtt_params(output.x_tt_params)
    except TokenDecodeError as error:
        return SelfCheckFailed(f"x-tt-params does not decode: {error}")
    if params != output.query:
        return SelfCheckFailed("x-tt-params does not carry the signed query")
    return None
