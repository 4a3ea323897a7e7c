"""The last gate before a signature leaves `Signer`: it must decode and match its request."""

from __future__ import annotations

from .engine import EngineOutput
from .errors import SelfCheckFailed
from .tokenerrors import TokenDecodeError
from .urls import PreparedRequest, append_tokens
from .xbogus import verify_xbogus
from .xgnarly import verify_xgnarly
from .xttparams import decode_xtt_params

__all__ = ["check_output"]


def check_output(request: PreparedRequest, output: EngineOutput) -> None:
    """Raise `SelfCheckFailed` unless every token covers exactly this request."""
    expected_agent = request.user_agent or output.navigator.user_agent
    if output.user_agent != expected_agent:
        raise SelfCheckFailed("the engine signed with a different User-Agent than requested")
    expected_query = append_tokens(
        request.query_for(output.navigator), output.verify_fp, request.ms_token
    )
    if output.query != expected_query:
        raise SelfCheckFailed("the signed query differs from the request's query")
    if request.include_verify_fp and not output.verify_fp:
        raise SelfCheckFailed("verifyFp was requested but not produced")
    if not verify_xbogus(output.x_bogus, output.query, output.user_agent, request.body):
        raise SelfCheckFailed("X-Bogus does not decode to this query, body and User-Agent")
    if not verify_xgnarly(output.x_gnarly, output.query, output.user_agent, request.body):
        raise SelfCheckFailed("X-Gnarly does not decode to this query, body and User-Agent")
    try:
        params = decode_xtt_params(output.x_tt_params)
    except TokenDecodeError as error:
        raise SelfCheckFailed(f"x-tt-params does not decode: {error}") from None
    if params != output.query:
        raise SelfCheckFailed("x-tt-params does not carry the signed query")
