"""Running the API process: `signer api`."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers import QueueSettings, SignQueue
from workers.config import LogSettings
from workers.logs import configure_logging, get_logger

from .accounting import AccountingRuntime
from .app import create_app
from .metrics import ApiMetrics

__all__ = ["ApiSettings", "serve"]

log = get_logger("api.server")

# Seconds between reads of the queue's depth and workers for the gauges: three Redis
# commands in one round trip, about 0.6 commands a second for an idle API.
QUEUE_REFRESH_SECONDS = 5.0


class ApiSettings(BaseSettings):
    """`SIGNER_API_*`: where the API listens and whom it believes about client addresses."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_API_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the API listens on (0: any).")
    trust_forwarded_for: bool = Field(
        False,
        description="Take the client address from the first X-Forwarded-For hop (only "
        "behind a proxy that sets it): anonymous rate limits are per client address.",
    )


async def serve(
    settings: ApiSettings, queue_settings: QueueSettings, ready: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in hand and stop."""
    configure_logging(LogSettings())
    queue = SignQueue(queue_settings)
    await queue.start()
    metrics = ApiMetrics()
    accounting = AccountingRuntime(trust_forwarded_for=settings.trust_forwarded_for)
    app = create_app(
        queue, await accounting.start(queue.redis, queue_settings.prefix, metrics.registry), metrics
    )
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    for address in runner.addresses:
        print(f"signer api listening on http://{address[0]}:{address[1]}/", flush=True)
    log.info("api started", addresses=[f"{a[0]}:{a[1]}" for a in runner.addresses])
    refreshing = asyncio.create_task(_refresh_queue_gauges(queue, metrics), name="queue-gauges")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("api stopping")
        refreshing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refreshing
        # The runner's shutdown waits for in-flight requests (up to its timeout).
        await runner.cleanup()
        await accounting.close()
        await queue.close()


async def _refresh_queue_gauges(queue: SignQueue, metrics: ApiMetrics) -> None:
    """Keep the queue gauges fresh between scrapes, off the request path."""
    while True:
        await metrics.refresh_queue(queue)
        await asyncio.sleep(QUEUE_REFRESH_SECONDS)
