"""The browser: one headless Chromium per process, one isolated context per episode.

Playwright cannot download a browser on these machines, so we launch Debian's ``chromium``
(``apt-get install chromium``) through ``executable_path``. Every env instance of a process
shares the one browser process; each episode gets a fresh ``BrowserContext`` (its own cookies,
tabs and history), which is cheap (milliseconds) compared with a browser launch (~1 s).

Safety: a context can only reach the allowlisted sites. Every request (documents, scripts,
images, XHR, WebSockets) passes a :class:`RequestGuard`, which lets through the allowlisted
origins and refuses everything else, logging each refusal; service workers are blocked so that
no request escapes the routing.

Playwright's sync API is bound to the thread that started it; the rollout engine is
single-threaded, which is what this module assumes.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agentbench.env import Availability

logger = logging.getLogger(__name__)

CHROMIUM_VARIABLE = "AGENTBENCH_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
# Schemes that never leave the browser.
LOCAL_SCHEMES = ("about", "data", "blob", "chrome-error")


def chromium_path() -> str:
    return os.environ.get(CHROMIUM_VARIABLE) or DEFAULT_CHROMIUM


def browser_availability() -> Availability:
    """Whether Playwright and a Chromium binary are present."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return Availability(False, "install Playwright for Python (pip install playwright)")
    path = chromium_path()
    if not (os.path.isfile(path) or shutil.which(path)):
        return Availability(False, f"no Chromium at {path}: apt-get install -y chromium "
                                   f"(or set {CHROMIUM_VARIABLE} to a Chromium binary)")
    return Availability(True)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme, 0)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass
class RequestGuard:
    """The allowlist of one context: origins that may be reached; refusals are kept and logged."""

    allowed_origins: frozenset[str]
    refused: list[str] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)

    @classmethod
    def for_urls(cls, urls: Iterable[str]) -> RequestGuard:
        return cls(frozenset(origin_of(u) for u in urls if u))

    def allows(self, url: str) -> bool:
        scheme = url.split(":", 1)[0].lower()
        if scheme in LOCAL_SCHEMES:
            return True
        if scheme not in ("http", "https", "ws", "wss"):
            return False
        return origin_of(url) in self.allowed_origins

    def refuse(self, url: str, kind: str) -> None:
        self.refused.append(url)
        # Every refusal is logged; the first per origin loudly (a site's page may embed many).
        origin = origin_of(url) if "://" in url else url
        level = logging.DEBUG if origin in self._warned else logging.WARNING
        self._warned.add(origin)
        logger.log(level, "refused %s request to %s: not one of the configured sites", kind, url)

    # Playwright handlers
    def on_route(self, route) -> None:
        request = route.request
        if self.allows(request.url):
            route.continue_()
        else:
            self.refuse(request.url, request.resource_type)
            route.abort("blockedbyclient")

    def on_websocket(self, ws) -> None:
        if self.allows(ws.url):
            ws.connect_to_server()
        else:
            self.refuse(ws.url, "websocket")
            ws.close(code=1008, reason="not an allowlisted site")


class BrowserHost:
    """The process's one Playwright driver and Chromium, started on first use."""

    def __init__(self) -> None:
        self._playwright = None
        self._browser = None

    def browser(self):
        if self._browser is None or not self._browser.is_connected():
            from playwright.sync_api import sync_playwright

            if self._playwright is None:
                self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium_path(), args=list(CHROMIUM_FLAGS), headless=True)
        return self._browser

    def new_context(self, guard: RequestGuard, viewport: tuple[int, int], timeout_ms: float):
        context = self.browser().new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, service_workers="block",
            locale="en-US", timezone_id="UTC")
        context.set_default_timeout(timeout_ms)
        context.set_default_navigation_timeout(max(timeout_ms, 30_000))
        context.route("**/*", guard.on_route)
        context.route_web_socket("**/*", guard.on_websocket)
        return context

    def close(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()
        except Exception:  # pragma: no cover - shutting down anyway
            pass
        self._browser = self._playwright = None


HOST = BrowserHost()
atexit.register(HOST.close)
