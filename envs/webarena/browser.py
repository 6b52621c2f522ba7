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
import re
import shutil
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from agentbench.env import Availability
from agentbench.extras import needs_extra, require_extra

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
        return Availability(False, needs_extra("webarena", "playwright"))
    path = chromium_path()
    if not (os.path.isfile(path) or shutil.which(path)):
        return Availability(False, f"no Chromium at {path}: apt-get install -y chromium "
                                   f"(or set {CHROMIUM_VARIABLE} to a Chromium binary)")
    return Availability(True)


SPECIAL_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


def _ipv4(host: str) -> str | None:
    """The dotted form of a host the WHATWG parser reads as IPv4 (``0x7f.1``, ``2130706433``)."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts or len(parts) > 4:
        return None

    def number(text: str) -> int | None:
        for pattern, base, skip in ((r"0[xX][0-9a-fA-F]*", 16, 2), (r"0[0-7]+", 8, 1), (r"0|[1-9][0-9]*", 10, 0)):
            if re.fullmatch(pattern, text):
                return int(text[skip:] or "0", base)
        return None

    last = parts[-1]
    if number(last) is None:  # the last label decides: not a number, not an IPv4 host
        return None
    values = [number(p) for p in parts]
    if any(v is None for v in values) or any(v > 255 for v in values[:-1]):
        return ""  # failure: the browser refuses to load it
    *head, tail = values
    if tail >= 256 ** (5 - len(values)):
        return ""
    value = sum(v * 256 ** (3 - i) for i, v in enumerate(head)) + tail
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


def whatwg_host_port(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``url`` as a browser's URL parser (WHATWG) reads it, for the
    special schemes; None when it does not parse. Unlike ``urllib``, a backslash is a slash,
    tabs and newlines vanish, any number of slashes may follow the scheme, and the user info
    ends at the *last* ``@`` before the path."""
    text = url.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14"
                     "\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
    text = re.sub(r"[\t\n\r]", "", text)
    found = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", text)
    if not found:
        return None
    scheme = found.group(1).lower()
    if scheme not in SPECIAL_PORTS:
        return None
    rest = text[found.end():].lstrip("/\\")
    authority = re.split(r"[/\\?#]", rest, maxsplit=1)[0]
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        if "]" not in hostport:
            return None
        host, _, after = hostport.partition("]")
        host += "]"
        port_text = after[1:] if after.startswith(":") else ("" if after == "" else None)
    else:
        host, _, port_text = hostport.partition(":")
    if port_text is None or (port_text and not port_text.isdigit()):
        return None
    port = int(port_text) if port_text else SPECIAL_PORTS[scheme]
    if port > 65535:
        return None
    try:
        host = urllib.parse.unquote(host, errors="strict").lower()
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    if host.startswith("["):
        if not re.fullmatch(r"\[[0-9a-f:.]+\]", host):
            return None
    elif not host or re.search(r"[\x00-\x20#%/:<>?@\[\\\]^|]", host):
        return None
    dotted = _ipv4(host) if not host.startswith("[") else None
    if dotted == "":
        return None
    return scheme, dotted or host, port


def origin_of(url: str) -> str:
    """``scheme://host:port`` as the browser would reach it (ws counts as http); "" when the
    browser would not parse the URL."""
    parsed = whatwg_host_port(url)
    if parsed is None:
        return ""
    scheme, host, port = parsed
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return f"{scheme}://{host}:{port}"


@dataclass
class RequestGuard:
    """The allowlist of one context: origins that may be reached; refusals are kept and logged."""

    allowed_origins: frozenset[str]
    refused: list[str] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)

    @classmethod
    def for_urls(cls, urls: Iterable[str]) -> RequestGuard:
        return cls(frozenset(o for o in (origin_of(u) for u in urls if u) if o))

    def allows(self, url: str) -> bool:
        scheme = url.split(":", 1)[0].lower()
        if scheme in LOCAL_SCHEMES:
            return True
        if scheme not in ("http", "https", "ws", "wss"):
            return False
        origin = origin_of(url)
        return bool(origin) and origin in self.allowed_origins

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
            sync_playwright = require_extra("playwright.sync_api", extra="webarena", what="env webarena-lite",
                                            package="playwright").sync_playwright

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
