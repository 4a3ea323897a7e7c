"""Outbound proxies for TikTok requests: parsed once, used in turn, never logged whole.

People run sign servers behind residential proxies, often several, so the client takes a
list and moves to the next proxy on every attempt. A proxy URL usually carries a password:
it is split into a credential-free URL and a `Proxy-Authorization` header here, and
everything that prints a proxy (repr, str, logs, errors) shows `user:***@` at most.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

import aiohttp

__all__ = ["ProxyRotation", "UpstreamProxy", "parse_proxies"]

ProxyScheme = Literal["http", "https", "socks5"]
_SCHEMES: tuple[ProxyScheme, ...] = ("http", "https", "socks5")


@dataclass(frozen=True, slots=True)
class UpstreamProxy:
    """One proxy: where it is, and its credentials kept apart from the address."""

    scheme: ProxyScheme
    host: str
    port: int
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """The proxy's address without credentials (what aiohttp gets as `proxy=`)."""
        return f"{self.scheme}://{self._netloc()}"

    @property
    def headers(self) -> dict[str, str] | None:
        """`Proxy-Authorization` for an HTTP(S) proxy with credentials."""
        if not self.username and not self.password:
            return None
        return {"Proxy-Authorization": aiohttp.encode_basic_auth(self.username, self.password)}

    def url_with_credentials(self) -> str:
        """The full URL, for aiohttp-socks only, which takes credentials inside it."""
        if not self.username and not self.password:
            return self.url
        user = quote(self.username, safe="")
        password = quote(self.password, safe="")
        return f"{self.scheme}://{user}:{password}@{self._netloc()}"

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        user = f"{self.username}:***@" if self.username or self.password else ""
        return f"{self.scheme}://{user}{self._netloc()}"

    def __repr__(self) -> str:
        return f"UpstreamProxy({str(self)!r})"


def parse_proxies(value: str) -> list[UpstreamProxy]:
    """`http://u:p@host:port, socks5://host:1080` as proxies; raises `ValueError`, whose
    message never repeats a password."""
    proxies = []
    for index, text in enumerate(part.strip() for part in value.split(",")):
        if not text:
            continue
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ValueError(f"proxy #{index + 1} is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(
                f"proxy #{index + 1} has scheme {scheme!r}; use http://, https:// or socks5://"
            )
        if not parts.hostname:
            raise ValueError(f"proxy #{index + 1} has no host")
        if port is None:
            port = {"http": 80, "https": 443, "socks5": 1080}[scheme]
        proxies.append(
            UpstreamProxy(
                scheme=scheme,
                host=parts.hostname,
                port=port,
                username=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
            )
        )
    return proxies


class ProxyRotation:
    """The proxies in turn, one per attempt; `None` forever when there are none."""

    def __init__(self, proxies: Sequence[UpstreamProxy]) -> None:
        self.proxies = tuple(proxies)
        self._turn: Iterator[UpstreamProxy] | None = (
            itertools.cycle(self.proxies) if self.proxies else None
        )

    def next(self) -> UpstreamProxy | None:
        return next(self._turn) if self._turn is not None else None
