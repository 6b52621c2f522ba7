"""Logging in to the WebArena sites through their own login pages, as BrowserGym does.

The accounts are WebArena's published evaluation accounts; a deployment with other ones passes
``--set accounts_file=FILE`` (JSON: site -> {"username", "password"}).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentbench.errors import AgentbenchError, ConfigError

DEFAULT_ACCOUNTS: dict[str, dict[str, str]] = {
    "reddit": {"username": "MarvelsGrantMan136", "password": "test1234"},
    "gitlab": {"username": "byteblaze", "password": "hello1234"},
    "shopping": {"username": "emma.lopez@gmail.com", "password": "Password.123"},
    "shopping_admin": {"username": "admin", "password": "admin1234"},
    "shopping_site_admin": {"username": "admin", "password": "admin1234"},
}


class LoginError(AgentbenchError):
    """A site's login page did not accept the account (or is not the expected page)."""


def load_accounts(path: str | None) -> dict[str, dict[str, str]]:
    accounts = {site: dict(account) for site, account in DEFAULT_ACCOUNTS.items()}
    if path:
        try:
            given = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"accounts file {path}: {exc}") from exc
        if not isinstance(given, dict) or not all(
                isinstance(v, dict) and {"username", "password"} <= set(v) for v in given.values()):
            raise ConfigError(f"accounts file {path}: expected {{site: {{username, password}}}}")
        accounts.update({site: {k: str(v[k]) for k in ("username", "password")} for site, v in given.items()})
    return accounts


@dataclass(frozen=True)
class LoginFlow:
    """Fill a site's login form: open ``path``, optionally click a link, fill two labelled fields."""

    path: str
    username_label: str
    submit: str
    open_link: str | None = None
    exact_labels: bool = False
    failed_if_url_contains: str | None = None

    def run(self, page: Any, base_url: str, account: Mapping[str, str], timeout_ms: float) -> None:
        page.goto(base_url + self.path)
        if self.open_link:
            page.get_by_role("link", name=self.open_link).click(timeout=timeout_ms)
        page.get_by_label(self.username_label, exact=self.exact_labels).fill(account["username"], timeout=timeout_ms)
        page.get_by_label("Password", exact=self.exact_labels).fill(account["password"], timeout=timeout_ms)
        page.get_by_role("button", name=self.submit).click(timeout=timeout_ms)
        page.wait_for_load_state("load")
        if self.failed_if_url_contains and self.failed_if_url_contains in page.url:
            raise LoginError(f"login to {base_url} failed: still on {page.url}")


FLOWS: dict[str, LoginFlow] = {
    "shopping": LoginFlow("/customer/account/login/", "Email", "Sign In", exact_labels=True,
                          failed_if_url_contains="/customer/account/login"),
    "shopping_admin": LoginFlow("", "Username", "Sign in"),
    "gitlab": LoginFlow("/users/sign_in", "Username or email", "Sign in", failed_if_url_contains="/users/sign_in"),
    "reddit": LoginFlow("", "Username", "Log in", open_link="Log in", failed_if_url_contains="/login"),
}


def log_in(site: str, page: Any, base_url: str, accounts: Mapping[str, Mapping[str, str]],
           timeout_ms: float) -> None:
    """Log in to ``site`` (sites without accounts, like map and wikipedia, need nothing)."""
    flow = FLOWS.get(site)
    if flow is None:
        return
    try:
        flow.run(page, base_url, accounts[site], timeout_ms)
    except LoginError:
        raise
    except Exception as exc:  # a missing field or button: not the site's login page
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoginError(f"login to {site} at {base_url} failed: {first}") from exc


