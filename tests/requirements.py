"""What the tests need from the machine (Debian's Chromium, a PostgreSQL server, Playwright):
missing, a test skips on a developer's machine and fails under CI, where `make test` installs
everything (scripts/ensure-system-packages)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def under_ci() -> bool:
    """CI=true (or 1/yes), as CI services and .ci/run set it; CI=false is not CI."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(reason: str) -> NoReturn:
    """Stop the test for want of `reason`: a failure under CI, a skip elsewhere."""
    if under_ci():
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_chromium() -> None:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: scripts/ensure-system-packages chromium installs it")
