"""An offline TikTok: web pages, webcast API and push socket on loopback, for tests and bots.

`Sandbox` (sandbox.server) is the server; events (sandbox.events) are what it pushes; a
`Script` or an `EventMix` (sandbox.script) is what it plays to each socket on its own;
`run_sandbox` (sandbox.run) is the command users run (`signer sandbox`); README.md's
"Offline TikTok for your bots" is its manual.
"""

from __future__ import annotations

from sandbox.events import Chat, Event, Gift, Like, LiveEnd, Member, Social, Viewer, ViewerCount
from sandbox.push import PushSession, ReceivedFrame
from sandbox.record import RecordedRequest, Recorder
from sandbox.rooms import DEFAULT_ROOM_ID, DEFAULT_UNIQUE_ID, OFFLINE_UNIQUE_ID, Room
from sandbox.run import run_sandbox
from sandbox.script import EventMix, Script, Step, load_script
from sandbox.server import Sandbox
from sandbox.state import MODES, Mode

__all__ = [
    "DEFAULT_ROOM_ID",
    "DEFAULT_UNIQUE_ID",
    "MODES",
    "OFFLINE_UNIQUE_ID",
    "Chat",
    "Event",
    "EventMix",
    "Gift",
    "Like",
    "LiveEnd",
    "Member",
    "Mode",
    "PushSession",
    "ReceivedFrame",
    "RecordedRequest",
    "Recorder",
    "Room",
    "Sandbox",
    "Script",
    "Social",
    "Step",
    "Viewer",
    "ViewerCount",
    "load_script",
    "run_sandbox",
]
