"""Shared pytest options."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.fake_vendor import FakeVendor

# CI runs the property tests on a fixed seed, so a landing never hangs on a lucky draw;
# local runs keep exploring new inputs (and save what they find in .hypothesis/).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the expected output of golden tests instead of comparing (review the diff)",
    )


@pytest.fixture
def fake_vendor() -> Iterator[FakeVendor]:
    """A fake vendor API on a free loopback port (tests/fake_vendor.py): records every request,
    answers as scripted."""
    with FakeVendor() as vendor:
        yield vendor
