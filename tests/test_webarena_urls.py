"""WebArena's allowlist reads URLs as the browser does (WHATWG), not as urllib does (issue 18,
case 15); the real-browser check is in test_webarena_browser.py."""

from __future__ import annotations

import pytest

from agentbench.envs.webarena.browser import RequestGuard, origin_of

SITE = "http://shop.local:7770"


@pytest.mark.parametrize("url", [
    "http://evil.com\\@shop.local:7770/",       # urllib: host shop.local; browsers: evil.com
    "http:\\\\evil.com\\@shop.local:7770/",
    "http://evil.com#@shop.local:7770/",
    "http://evil.com?@shop.local:7770/",
    "http://shop.local:7770@evil.com/",
    "http://shop.local.:7770/",                 # another host to a browser
    "http://shop.local:77700/",
    "http://[::1/",
    "javascript:alert(1)",
    "file:///etc/passwd",
])
def test_urls_that_leave_the_site_are_refused(url):
    assert not RequestGuard.for_urls([SITE]).allows(url)


@pytest.mark.parametrize("url", [
    "http://shop.local:7770/x",
    "HTTP://SHOP.local:7770",
    "http://user:pw@shop.local:7770/",
    "http://a@b@shop.local:7770/",
    "http:/shop.local:7770/",                   # browsers accept any number of slashes
    "http://sh\top.local:7770/",                # tabs and newlines vanish
    "http://%73hop.local:7770/",
    "ws://shop.local:7770/socket",
])
def test_urls_of_the_site_are_allowed(url):
    assert RequestGuard.for_urls([SITE]).allows(url)


def test_numeric_ipv4_forms_are_read_as_the_browser_does():
    assert origin_of("http://0x7f.1:7770/") == origin_of("http://127.0.0.1:7770/") == "http://127.0.0.1:7770"
    assert origin_of("http://2130706433:7770") == "http://127.0.0.1:7770"
    assert origin_of("http://1.2.3.999/") == ""
