"""The sandbox's shared, mutable state: rooms, mode, cookies, the record, fault switches.

The HTTP routes (`sandbox.web`) and the push server (`sandbox.push`) both read it; `Sandbox`
owns it and exposes the switches tests flip (`mode`, `fault_status`, `delay`).
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, get_args

from sandbox.cookies import CookieAuthority
from sandbox.record import Recorder
from sandbox.rooms import RoomBook
from sandbox.script import EventMix, Script

__all__ = ["MODES", "Mode", "SandboxState"]

# fetch: im/fetch answers a ProtoMessageFetchResult to a signed request (TikTok as the
# clients were written against). socket: im/fetch always answers empty and the push server
# takes the direct socket (TikTok as reported in 2026, spec section 7).
Mode = Literal["fetch", "socket"]
MODES: tuple[str, ...] = get_args(Mode)
# Route tokens handed out by im/fetch that a socket may still present; older ones are dropped.
_ROUTE_TOKENS_KEPT = 10_000


@dataclass(slots=True)
class SandboxState:
    rooms: RoomBook
    mode: Mode = "fetch"
    script: Script | None = None
    mix: EventMix | None = None
    # Seconds a socket waits for im_enter_room before its script starts anyway (TTLC 1.x
    # never sends one, spec section 4.6).
    start_delay: float = 0.5
    cookies: CookieAuthority = field(default_factory=CookieAuthority)
    recorder: Recorder = field(default_factory=Recorder)
    push_url: str = ""
    # Test switches: every HTTP route answers this status, or waits this long first.
    fault_status: int | None = None
    delay: float = 0.0
    route_tokens: OrderedDict[str, str] = field(default_factory=OrderedDict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        """A fresh positive id for log ids, message ids and sequence numbers."""
        return 7_000_000_000_000_000_000 + next(self._ids)

    def issue_route_token(self, room_id: str) -> str:
        """A `wrss` value for an im/fetch answer; the push server accepts it in fetch mode."""
        token = secrets.token_urlsafe(32)
        self.route_tokens[token] = room_id
        while len(self.route_tokens) > _ROUTE_TOKENS_KEPT:
            self.route_tokens.popitem(last=False)
        return token
