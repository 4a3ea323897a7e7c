"""`signer up` on a machine with no REDIS_URL or DATABASE_URL: everything private, then gone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from stack.services import free_port as _free_port
from tests.service_stack import get_json as _get
from tests.signer.conftest import FETCH_URL


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def test_up_starts_private_services_and_stops_everything() -> None:
    # Not pytest's tmp_path: as root, Postgres runs as `postgres`, which must be able to
    # enter every parent folder of its data.
    tmp_path = Path(tempfile.mkdtemp(prefix="signer-up-"))
    tmp_path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["SIGNER_ENGINE"] = "native"
    port = _free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "signer", "up", "--port", str(port), "--state", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert up.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("signer is up"):
                break
        output = "".join(lines)
        assert f"signer is up: http://127.0.0.1:{port}" in output, output
        redis_port = int(re.search(r"private Redis on redis://127.0.0.1:(\d+)", output)[1])  # type: ignore[index]
        pg_port = int(re.search(r"private Postgres on \S+:(\d+)/signer", output)[1])  # type: ignore[index]
        assert _port_open(redis_port)
        assert _port_open(pg_port)
        status, health = _get(f"http://127.0.0.1:{port}/health")
        assert status == 200, health
        query = urllib.parse.urlencode({"url": FETCH_URL})
        status, body = _get(f"http://127.0.0.1:{port}/webcast/sign_url?{query}")
        assert status == 200
        assert "&X-Bogus=" in str(body["signedUrl"])
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0
    assert not _port_open(port)
    assert not _port_open(redis_port)
    assert not _port_open(pg_port)
    assert (tmp_path / "postgres" / "data" / "PG_VERSION").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
