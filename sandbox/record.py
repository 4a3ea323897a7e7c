"""What the sandbox received, for tests to assert on ("one room lookup", "no upstream call").

Every HTTP request and every push-socket handshake becomes one `RecordedRequest`, with the
route it hit (`kind`), the raw query as sent (signatures cover those exact bytes), the
headers, the status answered and an `outcome` word for the routes that judge a request
(`ok`, `unsigned`, `bad_signature`, `bad_ttwid`, `socket_mode`, `no_room`, ...).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

__all__ = ["KINDS", "RecordedRequest", "Recorder"]

# The route names a record's `kind` takes; "unknown" is any path the sandbox does not serve.
KINDS = (
    "home",
    "live_page",
    "api_live_room",
    "check_alive",
    "room_info",
    "im_fetch",
    "push",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    kind: str
    method: str
    path: str
    raw_query: str
    headers: tuple[tuple[str, str], ...]
    status: int
    outcome: str = ""
    at: float = field(default_factory=time.time)

    @property
    def query(self) -> dict[str, str]:
        """Decoded query; the last value wins for a repeated name (as the clients send it)."""
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


class Recorder:
    """An append-only list of records, with counts by kind."""

    def __init__(self) -> None:
        self.records: list[RecordedRequest] = []

    def add(self, record: RecordedRequest) -> None:
        self.records.append(record)

    def of(self, *kinds: str) -> list[RecordedRequest]:
        return [record for record in self.records if record.kind in kinds]

    def count(self, *kinds: str) -> int:
        """How many requests of these kinds (all kinds when none are named)."""
        return len(self.records) if not kinds else len(self.of(*kinds))

    def outcomes(self, kind: str) -> list[str]:
        return [record.outcome for record in self.of(kind)]

    def clear(self) -> None:
        self.records.clear()

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)
