"""`signer up`: the whole stack on this machine, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .services import PrivatePostgres, PrivateRedis, ServiceError, free_port

__all__ = ["run_up"]

_CLIENTS = """\
Point your client at it:
  TikTok-Live-Connector 1.x:  new WebcastPushConnection(user,
                                {{ signProviderOptions: {{ host: '{base}/' }} }})
  TikTok-Live-Connector 2.x:  SIGN_API_URL={base} (or SignConfig.basePath = '{base}')
  TikTokLive (Python):        SIGN_API_URL={base}
  tiktok-signature clients:   POST {base}/signature

Without a key, callers get the anonymous budget per address (SIGNER_LIMIT_*). Keys:
  export DATABASE_URL={database_url}
  signer users create you@example.com --tier api_key
  signer keys create --user you@example.com --name laptop
"""


def _healthy(base: str, workers: int) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("workers", 0) >= workers)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def run_up(state: Path, port: int, workers: int, host: str = "127.0.0.1") -> int:
    """Start everything, print the base URL, and run until interrupted."""
    env = dict(os.environ)
    services: list[PrivateRedis | PrivatePostgres] = []
    children: list[subprocess.Popen[bytes]] = []
    stop = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not env.get("REDIS_URL"):
            redis = PrivateRedis(state / "redis")
            services.append(redis)  # before start: a half-started server is stopped too
            env["REDIS_URL"] = redis.start()
            print(f"private Redis on {env['REDIS_URL']}", flush=True)
        if not env.get("DATABASE_URL"):
            postgres = PrivatePostgres(state / "postgres")
            services.append(postgres)
            env["DATABASE_URL"] = postgres.start()
            print(f"private Postgres on {env['DATABASE_URL']}", flush=True)
        port = port or free_port()
        command = [sys.executable, "-m", "signer"]
        children.append(
            subprocess.Popen([*command, "worker", "--processes", str(workers)], env=env)
        )
        children.append(
            subprocess.Popen([*command, "api", "--host", host, "--port", str(port)], env=env)
        )
        base = f"http://{host}:{port}"
        deadline = time.monotonic() + 60
        while not stop and not _healthy(base, workers):
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                print("signer up: the service did not become healthy", file=sys.stderr)
                return 1
            time.sleep(0.2)
        if not stop:
            clients = _CLIENTS.format(base=base, database_url=env["DATABASE_URL"])
            print(f"\nsigner is up: {base}\n{clients}", flush=True)
            print("Ctrl-C stops everything.", flush=True)
        while not stop and all(c.poll() is None for c in children):
            time.sleep(0.2)
        return 0 if stop else 1
    except ServiceError as error:
        print(f"signer up: {error}", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):  # the API first, then the workers drain
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                child.kill()
        for service in reversed(services):
            service.stop()
        print("signer stopped", flush=True)
