"""What the push server plays to each socket: a fixed script, a random mix, or both.

A script is a list of steps, each an event after a delay (seconds after the previous step).
It comes from code (`Script([Step(1.0, Chat("hi"))])`) or from a JSON file:

    {"loop": false, "events": [{"after": 1, "type": "chat", "text": "hi"},
                               {"after": 2, "type": "gift", "name": "Rose"},
                               {"after": 1, "type": "live_end"}]}

(a bare list of events is accepted too). A mix draws random events at a mean rate, weighted by
type; it never sends a live end, which would stop the stream a user is building against.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.events import (
    Chat,
    Event,
    Gift,
    Like,
    Member,
    Social,
    Viewer,
    ViewerCount,
    event_from_json,
)

__all__ = ["DEFAULT_WEIGHTS", "EventMix", "Script", "Step", "load_script"]

DEFAULT_WEIGHTS: Mapping[str, int] = {
    "chat": 5,
    "like": 4,
    "member": 3,
    "gift": 2,
    "social": 1,
    "viewer_count": 1,
}
_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_WORDS = ("hello", "hi from the sandbox", "nice stream", "where are you from?", "lol", "gg")
_GIFTS = ((5655, "Rose", 1), (5269, "TikTok", 1), (6064, "GG", 1), (5827, "Ice Cream Cone", 1))


@dataclass(frozen=True, slots=True)
class Step:
    after: float
    event: Event

    def __post_init__(self) -> None:
        if not 0 <= self.after <= 3600:
            raise ValueError(f"a step's delay must be 0 to 3600 seconds, got {self.after}")


@dataclass(frozen=True, slots=True)
class Script:
    steps: Sequence[Step] = ()
    loop: bool = False

    def __post_init__(self) -> None:
        if self.loop and sum(step.after for step in self.steps) <= 0:
            raise ValueError("a looping script needs a delay somewhere, or it would spin")


@dataclass(slots=True)
class EventMix:
    """Random events at `rate` per second on average, per socket."""

    rate: float = 1.0
    weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 1000:
            raise ValueError(
                f"rate must be above 0 and at most 1000 events a second, got {self.rate}"
            )
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown or not any(weight > 0 for weight in self.weights.values()):
            raise ValueError(
                f"weights need positive entries among {sorted(DEFAULT_WEIGHTS)}, "
                f"got {dict(self.weights)}"
            )

    def steps(self) -> Iterator[Step]:
        """An endless stream of steps with exponential gaps (a Poisson process)."""
        rng = random.Random(self.seed)
        kinds = [kind for kind, weight in self.weights.items() if weight > 0]
        weights = [self.weights[kind] for kind in kinds]
        viewers = 10
        while True:
            kind = rng.choices(kinds, weights)[0]
            name = rng.choice(_NAMES)
            user = Viewer(
                unique_id=name, nickname=name.capitalize(), user_id=1000 + _NAMES.index(name)
            )
            event: Event
            if kind == "chat":
                event = Chat(rng.choice(_WORDS), user)
            elif kind == "like":
                event = Like(count=rng.randint(1, 15), user=user)
            elif kind == "member":
                event = Member(user)
            elif kind == "gift":
                gift_id, gift_name, diamonds = rng.choice(_GIFTS)
                event = Gift(gift_id=gift_id, name=gift_name, diamonds=diamonds, user=user)
            elif kind == "social":
                event = Social(rng.choice(("follow", "share")), user)
            else:
                viewers = max(1, viewers + rng.randint(-3, 5))
                event = ViewerCount(viewers)
            yield Step(rng.expovariate(self.rate), event)


def _script_from_json(data: Any) -> Script:
    if isinstance(data, list):
        data = {"events": data}
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ValueError('a script is a list of events or {"events": [...], "loop": false}')
    steps = []
    for index, item in enumerate(data["events"]):
        if not isinstance(item, dict):
            raise ValueError(f"event {index}: must be an object")
        after = item.get("after", 0)
        if not isinstance(after, int | float) or isinstance(after, bool):
            raise ValueError(f"event {index}: after must be a number of seconds")
        try:
            steps.append(Step(float(after), event_from_json(item)))
        except ValueError as error:
            raise ValueError(f"event {index}: {error}") from None
    loop = data.get("loop", False)
    if not isinstance(loop, bool):
        raise ValueError("loop must be true or false")
    return Script(tuple(steps), loop=loop)


def load_script(source: Path | str) -> Script:
    """A script from a JSON file (a path) or JSON text; ValueError with the reason if wrong."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"cannot read script {source}: {error.strerror}") from None
    else:
        text = source
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"script is not JSON: {error}") from None
    return _script_from_json(data)
