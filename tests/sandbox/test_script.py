"""Scripts from JSON and the random mix: what users feed `python -m sandbox`."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sandbox import Chat, EventMix, Gift, LiveEnd, load_script


def test_a_script_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(
        '{"loop": false, "events": [{"after": 1, "type": "chat", "text": "hi",'
        ' "user": {"nickname": "Ann", "unique_id": "ann"}},'
        ' {"after": 0.5, "type": "gift", "name": "Lion", "diamonds": 29999},'
        ' {"type": "live_end"}]}'
    )
    script = load_script(path)
    assert [step.after for step in script.steps] == [1.0, 0.5, 0.0]
    first, second, third = (step.event for step in script.steps)
    assert isinstance(first, Chat)
    assert first.text == "hi"
    assert first.user.nickname == "Ann"
    assert isinstance(second, Gift)
    assert second.diamonds == 29999
    assert isinstance(third, LiveEnd)
    assert len(load_script('[{"type": "like", "count": 3}]').steps) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not json", "not JSON"),
        ('{"events": [{"type": "dance"}]}', "event type must be one of"),
        ('[{"type": "chat", "colour": "red"}]', "no field 'colour'"),
        ('[{"type": "chat", "after": "soon"}]', "after must be a number"),
        ('[{"type": "social", "action": "poke"}]', "follow or share"),
        ('{"loop": true, "events": [{"type": "chat"}]}', "needs a delay"),
    ],
)
def test_bad_scripts_say_why(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load_script(text)


def test_the_mix_is_seeded_and_never_ends_the_live() -> None:
    mix = EventMix(rate=50, seed=7)
    first = [step.event.kind for step in itertools.islice(mix.steps(), 200)]
    again = [step.event.kind for step in itertools.islice(EventMix(rate=50, seed=7).steps(), 200)]
    assert first == again
    assert "live_end" not in first
    assert {"chat", "like", "gift"} <= set(first)
    with pytest.raises(ValueError, match="rate"):
        EventMix(rate=0)
    with pytest.raises(ValueError, match="weights"):
        EventMix(weights={"dance": 1})
