"""The way to TikTok: pooled sessions, timeouts, retries, a per-host bound and the breaker.

Every request the client sends goes through `Upstream.get`, so the rules hold everywhere:
- one pooled `aiohttp.ClientSession` (plus one per SOCKS proxy, since aiohttp-socks works
  at the connector level); its cookie jar is a dummy, because cookies belong to a signing
  profile or to a caller, never to the process;
- connect and read timeouts; retries with full-jitter exponential backoff on connection
  errors (a connect timeout included) and 5xx only, since a 4xx or a slow answer would
  come back the same and a retry would only double the wait;
- a semaphore per TikTok host, so a burst of connects cannot open thousands of sockets;
- the breaker: one verdict per call, after its retries, and the proxies used in turn, one
  per attempt, so a dead proxy costs one attempt rather than the call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.cookies import Morsel
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from .breaker import BreakerOpen, CircuitBreaker
from .errors import TikTokRefused, TikTokTimeout, TikTokUnavailable, TikTokUnreachable
from .proxies import ProxyRotation, UpstreamProxy
from .settings import TikTokSettings
from .stats import UpstreamCounters

__all__ = ["MAX_BODY_BYTES", "ResponseCookie", "Upstream", "UpstreamResponse"]

log = logging.getLogger(__name__)

# A real im/fetch answer is tens of kilobytes and a live page a few hundred; anything
# far larger is not TikTok's and would only cost memory.
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResponseCookie:
    """One `Set-Cookie` from TikTok; `expires` in Unix seconds, None for a session cookie."""

    name: str
    value: str
    expires: float | None


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    cookies: tuple[ResponseCookie, ...]  # in the order TikTok set them, redirects included
    latency: float  # seconds, the last attempt


class Upstream:
    """Sends GETs to TikTok under the rules above; `start` before use, `close` after."""

    def __init__(self, settings: TikTokSettings, counters: UpstreamCounters) -> None:
        self.settings = settings
        self.counters = counters
        self.breaker = CircuitBreaker(
            failures=settings.tiktok_breaker_failures, cooldown=settings.tiktok_breaker_cooldown
        )
        self._proxies = ProxyRotation(settings.upstream_proxy)
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.tiktok_connect_timeout,
            sock_read=settings.tiktok_read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        self._socks_sessions: dict[UpstreamProxy, aiohttp.ClientSession] = {}
        self._host_bounds: dict[str, asyncio.Semaphore] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        self._session = self._new_session(self._connector(None))
        for proxy in self._proxies.proxies:
            if proxy.scheme == "socks5" and proxy not in self._socks_sessions:
                self._socks_sessions[proxy] = self._new_session(self._connector(proxy))

    async def close(self) -> None:
        sessions = [self._session, *self._socks_sessions.values()]
        self._session = None
        self._socks_sessions.clear()
        for session in sessions:
            if session is not None:
                await session.close()

    def _connector(self, proxy: UpstreamProxy | None) -> aiohttp.BaseConnector:
        limit = self.settings.tiktok_max_per_host
        if proxy is None:
            return aiohttp.TCPConnector(limit=limit * 4, limit_per_host=limit, ttl_dns_cache=300)
        from aiohttp_socks import ProxyConnector  # only where a SOCKS proxy is configured

        return ProxyConnector.from_url(
            proxy.url_with_credentials(), limit=limit * 4, limit_per_host=limit, rdns=True
        )

    def _new_session(self, connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            # Our headers are the browser's: no aiohttp User-Agent slipped in.
            skip_auto_headers=("User-Agent",),
        )

    def _host_bound(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc
        bound = self._host_bounds.get(host)
        if bound is None:
            bound = self._host_bounds[host] = asyncio.Semaphore(self.settings.tiktok_max_per_host)
        return bound

    async def get(
        self,
        endpoint: str,
        url: str,
        headers: Mapping[str, str],
        *,
        follow_redirects: bool = True,
    ) -> UpstreamResponse:
        """GET `url`; any answer below 500 is returned as it came. Raises
        `TikTokUnavailable` (breaker open), `TikTokUnreachable`, `TikTokTimeout` or
        `TikTokRefused` (5xx after the retries)."""
        if self._session is None:
            raise RuntimeError("Upstream.start() was not called")
        try:
            probe = self.breaker.acquire()
        except BreakerOpen as refused:
            self.counters.breaker_rejections += 1
            raise TikTokUnavailable(
                f"TikTok kept failing; not trying again for {refused.retry_after:.1f} s",
                retry_after=refused.retry_after,
                endpoint=endpoint,
            ) from None
        verdict = False
        try:
            response = await self._attempts(endpoint, url, headers, follow_redirects)
        except (TikTokUnreachable, TikTokTimeout, TikTokRefused):
            verdict = True
            self.breaker.failure()
            raise
        else:
            verdict = True
            self.breaker.success()
            return response
        finally:
            if not verdict:
                self.breaker.release(probe)

    async def _attempts(
        self, endpoint: str, url: str, headers: Mapping[str, str], follow_redirects: bool
    ) -> UpstreamResponse:
        attempts = 1 + self.settings.tiktok_retries
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if attempt:
                self.counters.retries[endpoint] += 1
                backoff = self.settings.tiktok_retry_backoff * 2 ** (attempt - 1)
                await asyncio.sleep(random.uniform(0, backoff))
            proxy = self._proxies.next()
            started = time.perf_counter()
            try:
                async with self._host_bound(url):
                    response = await self._send(url, headers, proxy, follow_redirects, started)
            except aiohttp.ConnectionTimeoutError as error:
                # A connect timeout is a connection error: nothing reached TikTok, so retry.
                self.counters.observe(endpoint, "timeout", time.perf_counter() - started)
                if last:
                    raise TikTokUnreachable(
                        f"could not connect to TikTok{_via(proxy)} within "
                        f"{self.settings.tiktok_connect_timeout:g} s ({type(error).__name__})",
                        endpoint=endpoint,
                    ) from None
                continue
            except (TimeoutError, aiohttp.ServerTimeoutError):
                self.counters.observe(endpoint, "timeout", time.perf_counter() - started)
                raise TikTokTimeout(
                    f"TikTok did not answer within {self.settings.tiktok_read_timeout:g} s"
                    f"{_via(proxy)}",
                    endpoint=endpoint,
                ) from None
            except aiohttp.ClientError as error:
                # Connection refused, reset, DNS, proxy refusal, a broken answer.
                self.counters.observe(endpoint, "error", time.perf_counter() - started)
                log.info(
                    "TikTok %s: %s%s (attempt %d)",
                    endpoint, type(error).__name__, _via(proxy), attempt + 1,
                )  # fmt: skip
                if last:
                    raise TikTokUnreachable(
                        f"could not reach TikTok{_via(proxy)} ({type(error).__name__})",
                        endpoint=endpoint,
                    ) from None
                continue
            self.counters.observe(endpoint, str(response.status), response.latency)
            if response.status >= 500:
                if last:
                    raise TikTokRefused(
                        f"TikTok answered {response.status} to {endpoint}",
                        status=response.status,
                        endpoint=endpoint,
                    )
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self,
        url: str,
        headers: Mapping[str, str],
        proxy: UpstreamProxy | None,
        follow_redirects: bool,
        started: float,
    ) -> UpstreamResponse:
        session = self._socks_sessions.get(proxy) if proxy is not None else None
        http_proxy = proxy if proxy is not None and session is None else None
        assert self._session is not None
        proxy_headers = http_proxy.headers if http_proxy is not None else None
        if proxy_headers and url.startswith("http://"):
            # A plain-http request goes to the proxy as is (no CONNECT), and aiohttp sends
            # `proxy_headers` only on CONNECT: the proxy's credentials ride on the request,
            # and the proxy strips them (hop-by-hop) before forwarding.
            headers = {**headers, **proxy_headers}
        async with (session or self._session).get(
            # encoded=True: the signature covers the query's exact bytes, and yarl would
            # otherwise normalise them (`%28` to `(`, `%2F` to `/`) on the way out.
            URL(url, encoded=True),
            headers=headers,
            proxy=http_proxy.url if http_proxy is not None else None,
            proxy_headers=proxy_headers,
            allow_redirects=follow_redirects,
            max_redirects=3,
        ) as answer:
            body = await _read_capped(answer)
            cookies = [
                cookie
                for hop in (*answer.history, answer)
                for cookie in _cookies(hop.cookies.values())
            ]
            return UpstreamResponse(
                status=answer.status,
                headers=answer.headers,
                body=body,
                cookies=tuple(cookies),
                latency=time.perf_counter() - started,
            )


async def _read_capped(answer: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(65_536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise aiohttp.ClientPayloadError(f"answer larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _cookies(morsels: Iterable[Morsel[str]]) -> list[ResponseCookie]:
    now = time.time()
    return [ResponseCookie(m.key, m.value, _expiry(m, now)) for m in morsels]


def _expiry(morsel: Morsel[str], now: float) -> float | None:
    max_age = morsel["max-age"]
    if max_age:
        try:
            return now + int(max_age)
        except ValueError:
            pass
    expires = morsel["expires"]
    if expires:
        try:
            return parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError):
            pass
    return None


def _via(proxy: UpstreamProxy | None) -> str:
    # str(proxy) hides the password; the message may reach a log or a client.
    return f" through proxy {proxy}" if proxy is not None else ""
