"""The dry-run's progress bar as a user sees it: a real `flowlang dry-run` process whose stderr
is a terminal (a pseudo-terminal), with and without CI=true."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from flowlang.commands.progress import LONG_RUN

FLOW = 'flow "Progress"\nserve messages on web\n\nstate start:\n    reply "Hello"\n    end\n'


def _samples(count: int) -> str:
    lines = ["start: 2026-01-05T09:00:00Z", "conversations:"]
    for n in range(count):
        lines += [
            f"  - name: visitor-{n}",
            "    channel: web",
            f"    customer: {{id: visitor-{n}}}",
            "    events:",
            "      - message: hi",
        ]
    return "\n".join(lines) + "\n"


def _dry_run_on_a_terminal(folder: Path, ci: str | None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    if ci is not None:
        env["CI"] = ci
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flowlang", "dry-run", "p.flow", "-m", "samples.yaml"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=300,
        )
    finally:
        os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end is closed: all is read
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return done.returncode, done.stdout.decode(), shown.decode(errors="replace")


@pytest.fixture
def long_run(tmp_path: Path) -> Path:
    (tmp_path / "p.flow").write_text(FLOW, "utf-8")
    (tmp_path / "samples.yaml").write_text(_samples(LONG_RUN), "utf-8")
    return tmp_path


def test_a_long_dry_run_on_a_terminal_shows_a_bar_but_not_in_ci(long_run: Path) -> None:
    code, report, terminal = _dry_run_on_a_terminal(long_run, ci=None)
    assert code == 0, terminal
    assert "events" in terminal and "100%" in terminal  # the bar, drawn to its end
    assert "100%" not in report  # stdout is the report alone
    code, report_in_ci, terminal = _dry_run_on_a_terminal(long_run, ci="true")
    assert code == 0 and "%" not in terminal and "events  [" not in terminal, terminal
    assert report_in_ci == report
    # CI=false is not CI
    _code, _report, terminal = _dry_run_on_a_terminal(long_run, ci="false")
    assert "100%" in terminal
