"""The watch every browser test runs under: a console error, a JavaScript error or a request
to another host is found (and the request never leaves the machine)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import Problems
from tests.browser.service import Running


def test_console_errors_script_errors_and_foreign_requests_are_found(
    service: Running, new_context: Callable[..., BrowserContext], problems: Problems
) -> None:
    page = new_context().new_page()
    page.goto(service.url + "/signin")
    page.evaluate("console.error('broken')")
    page.evaluate("setTimeout(() => { throw new Error('thrown'); }, 0)")
    reached = page.evaluate("fetch('http://example.com/x').then(() => 'reached', () => 'blocked')")
    page.wait_for_timeout(200)
    assert reached == "blocked"  # by the page's Content-Security-Policy, a console error
    with pytest.raises(PlaywrightError):
        page.goto("http://example.com/away")
    found = "\n".join(problems.found)
    assert "console error: broken" in found
    assert "JavaScript error: thrown" in found
    assert "violates the document's Content Security Policy" in found
    assert "request to a non-local host: http://example.com/away" in found
    problems.found.clear()  # found as they should be: this test itself passes
