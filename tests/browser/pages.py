"""What the browser tests do on the pages, as a user does it."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page

from tests.browser.service import Running


def sign_in(context: BrowserContext, service: Running, user: str) -> Page:
    """A page of `context` signed in as `user` through the sign-in form."""
    page = context.new_page()
    page.goto(service.url + "/signin")
    page.get_by_test_id("token").fill(service.tokens[user])
    page.get_by_test_id("signin").click()
    page.wait_for_load_state()
    return page
