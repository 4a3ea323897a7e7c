"""Every `SIGNER_*` variable is read by some setting, or reported at start-up."""

from __future__ import annotations

import os
import subprocess
import sys

from service.environment import SETTINGS_CLASSES, environment_names, unknown_signer_names


def test_a_misspelt_variable_is_reported_with_the_name_meant() -> None:
    unknown = unknown_signer_names({"SIGNER_CONTEXT": "8", "SIGNER_CONTEXTS": "4", "PATH": "/"})
    assert unknown == [("SIGNER_CONTEXT", "SIGNER_CONTEXTS")]


def test_every_setting_and_the_state_tag_are_known() -> None:
    names = {name for cls in SETTINGS_CLASSES for name in environment_names(cls)}
    environ = dict.fromkeys(names, "1") | {"SIGNER_UP_STATE": "/tmp/x", "DATABASE_URL": "x"}
    assert unknown_signer_names(environ) == []


def test_the_worker_command_warns_at_start_up() -> None:
    """A real `signer worker` with a typo in its environment says so in its log (and then
    fails on the Redis that is not there, which is not what this test is about)."""
    env = {
        **os.environ,
        "SIGNER_CONTEXT": "8",
        "SIGNER_LOG_FORMAT": "json",
        "SIGNER_ENGINE": "native",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SIGNER_WORKER_METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    warned = [line for line in done.stderr.splitlines() if "SIGNER_CONTEXT" in line]
    assert len(warned) == 1, done.stderr
    assert "unknown setting ignored" in warned[0]
    assert "SIGNER_CONTEXTS" in warned[0]  # the name meant
