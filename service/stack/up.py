"""`signer up`: the whole stack on this machine, stopped cleanly by Ctrl-C, and started
again cleanly after a run that was killed (see `service.stack.recovery`)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .recovery import STATE_TAG, StackRecord, clear_leftovers, hold_state_lock
from .services import (
    PrivatePostgres,
    PrivateRedis,
    ServiceError,
    free_port,
    parent_death_signal,
    port_is_free,
)

__all__ = ["DEFAULT_STATE", "banner", "run_up"]

DEFAULT_STATE = ".state"

_BANNER = """\
signer is up: {base}

Get a key (in another terminal, while this runs):
  {make_key}
  (or: {signer} users create you@example.com --tier api_key --if-missing{state_option}
       {signer} keys create --user you@example.com --name laptop{state_option})

Point your client at it, with the key:
  TikTok-Live-Connector 1.x:  signatureProvider.config.signProviderHost = '{base}/';
                              signatureProvider.config.signProviderFallbackHosts = [];
                              new WebcastPushConnection(user, {{ signProviderOptions:
                                {{ host: '{base}/', params: {{ apiKey: KEY }} }} }})
  TikTok-Live-Connector 2.x:  SIGN_API_URL={base} SIGN_API_KEY=KEY
  TikTokLive (Python):        SIGN_API_URL={base} SIGN_API_KEY=KEY
  tiktok-signature clients:   POST {base}/signature?apiKey=KEY

The console (keys, usage, errors): {base}/console/
  first operator: {signer} users create you@example.com --admin{state_option}
  (prints a link to choose a password); the API reference: {base}/docs

Without a key, callers get the anonymous budget per address (SIGNER_LIMIT_ANONYMOUS_*).
Ctrl-C stops everything."""


def banner(base: str, state: Path) -> str:
    """What `signer up` prints once it is healthy: the base URL and how to get a key."""
    custom = state.resolve() != (Path.cwd() / DEFAULT_STATE).resolve()
    state_option = f" --state {shlex.quote(str(state))}" if custom else ""
    make_key = "make key EMAIL=you@example.com"
    if custom:
        make_key += f" STATE={shlex.quote(str(state))}"
    # `signer` lives in the virtualenv, which is seldom on PATH: name the one running.
    beside = Path(sys.executable).parent / "signer"
    signer = shutil.which("signer") or (str(beside) if beside.is_file() else "python -m signer")
    return _BANNER.format(base=base, make_key=make_key, signer=signer, state_option=state_option)


def _healthy(base: str, workers: int) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("workers", 0) >= workers)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_in_use(port: int) -> str:
    return (
        f"signer up: port {port} is in use; choose another with `make run PORT=9000` "
        "(or `signer up --port`)"
    )


def _reusable(port: int) -> int:
    """The port an earlier run had, when it is free now (else 0: any free port)."""
    return port if port and port_is_free(port) else 0


def run_up(state: Path, port: int, workers: int, host: str = "127.0.0.1") -> int:
    """Start everything, print the base URL, and run until interrupted."""
    state.mkdir(parents=True, exist_ok=True)
    lock = hold_state_lock(state)
    if lock is None:
        print(
            f"signer up: another `signer up` is running on {state}; stop it first "
            "(or choose another folder with --state)",
            file=sys.stderr,
        )
        return 1
    # Before anything starts: what an earlier run left may hold the port.
    leftovers = clear_leftovers(state)
    if leftovers:
        print(f"signer up: {leftovers}", flush=True)
    if port and not port_is_free(port, host):
        print(_port_in_use(port), file=sys.stderr)
        lock.close()
        return 1
    port = port or free_port()
    # Every process started from here (the servers too) carries the tag, whoever its
    # parent is later.
    os.environ[STATE_TAG] = str(state.resolve())
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
        earlier = StackRecord.load(state)
        record = StackRecord(pid=os.getpid(), api=f"http://{host}:{port}")
        if not env.get("REDIS_URL"):
            redis = PrivateRedis(state / "redis", die_with_parent=True)
            services.append(redis)  # before start: a half-started server is stopped too
            env["REDIS_URL"] = record.redis_url = redis.start(_reusable(earlier.redis_port))
            record.redis_port = redis.port
            print(f"private Redis on {env['REDIS_URL']}", flush=True)
        command = [sys.executable, "-m", "service"]
        # SIGTERM when `signer up` dies, however it dies: the API stops, workers drain.
        # The workers need only Redis: they warm their browsers while Postgres starts.
        children.append(
            subprocess.Popen(
                [*command, "worker", "--processes", str(workers)],
                env=env,
                preexec_fn=parent_death_signal(signal.SIGTERM),
            )
        )
        if not env.get("DATABASE_URL"):
            postgres = PrivatePostgres(state / "postgres", die_with_parent=True)
            services.append(postgres)
            url = postgres.start(_reusable(earlier.postgres_port))
            env["DATABASE_URL"] = record.database_url = url
            record.postgres_port = postgres.port
            print(f"private Postgres on {env['DATABASE_URL']}", flush=True)
        record.save(state)
        children.append(
            subprocess.Popen(
                [*command, "api", "--host", host, "--port", str(port)],
                env=env,
                preexec_fn=parent_death_signal(signal.SIGTERM),
            )
        )
        base = record.api
        deadline = time.monotonic() + 60
        while not stop and not _healthy(base, workers):
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                print("signer up: the service did not become healthy", file=sys.stderr)
                return 1
            time.sleep(0.2)
        if not stop:
            print(f"\n{banner(base, state)}", flush=True)
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
        # What detached itself from the tree (Chromium's crash handler daemonizes) still
        # carries the tag: it goes too, so the next run finds nothing.
        clear_leftovers(state, grace=2.0)
        print("signer stopped", flush=True)
        lock.close()
