"""The browser core: Chromium driven over DevTools, warm contexts, the in-page bundle."""

from .engine import BrowserEngine
from .pool import ContextPool

__all__ = ["BrowserEngine", "ContextPool"]
