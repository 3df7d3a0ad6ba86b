"""The README's `flowlang serve` session, run as written: its shell block (section "Run the
service") against the real service, on a free port instead of 8080, in a folder of its own
with the repository's `examples/` and `flows/`. Each `# ` line right below a command is an
output the session must print, in order (`...` stands for anything; two spaces end it, before
a remark); a `# ` line after a blank line or a remark is prose. A user trial found the session
broken three ways (a flow whose chats never reached an agent, a payload dated January, a
deployment file that does not exist): this keeps it from breaking again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.patience import scaled
from tests.ports import address_in_use, free_port
from tests.requirements import missing

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Run the service"
SESSION_SECONDS = 120.0
"""How long the whole session may take on a quiet machine (`scaled` on a loaded one)."""
PORT_TRIES = 3


def session_block(readme: str) -> str:
    """The first ```sh block of the README's service section."""
    section = readme[readme.index(SECTION) :]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found is not None, f"no ```sh block under {SECTION!r}"
    return found.group(1)


def expected_outputs(block: str) -> list[re.Pattern[str]]:
    """The `# ` lines right below a command (or below another such line), as patterns."""
    wanted: list[re.Pattern[str]] = []
    previous = ""  # "command", "output" or "other"
    for line in block.splitlines():
        if line.startswith("# ") and previous in ("command", "output"):
            shown = re.split(r" {2,}", line[2:].strip())[0]
            parts = [re.escape(part) for part in shown.split("...")]
            wanted.append(re.compile(".*".join(parts)))
            previous = "output"
        elif line.strip() and not line.startswith("#") and not line.rstrip().endswith("\\"):
            previous = "command"
        elif line.rstrip().endswith("\\"):
            previous = "continued"
        else:
            previous = "other"
    return wanted


def test_the_block_reads_its_expected_outputs_and_skips_the_prose() -> None:
    block = 'a\n# {"x":1}\n# 2  a remark\n\n# prose\n# more prose\nb \\\n  c\n# 3...4\n'
    assert [p.pattern for p in expected_outputs(block)] == [
        re.escape('{"x":1}'),
        "2",
        "3.*4",
    ]


def run_session(block: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """The session in `folder`, on a free port instead of 8080; on another port when another
    process took that one before the service could bind it."""
    for attempt in range(PORT_TRIES):
        port = free_port()
        script = block.replace("localhost:8080", f"localhost:{port}")
        script = script.replace("flowlang serve ", f"flowlang serve --port {port} ", 1)
        assert script.count(f"localhost:{port}") >= 10 and "localhost:8080" not in script
        work = folder / f"try{attempt}"
        work.mkdir()
        for name in ("examples", "flows"):
            (work / name).symlink_to(ROOT / name)
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for name in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "CONV", "TOKEN"):
            env.pop(name, None)
        ran = subprocess.run(
            ["bash", "-c", "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(SESSION_SECONDS),
        )
        if ran.returncode == 0 or not address_in_use(ran.stderr):
            return ran
    return ran


def test_the_readme_serve_session_runs_as_written(tmp_path: Path) -> None:
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            missing(f"the README's session needs {tool}")
    block = session_block((ROOT / "README.md").read_text("utf-8"))
    ran = run_session(block, tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    printed = ran.stdout.splitlines()
    wanted = expected_outputs(block)
    assert len(wanted) >= 12
    at = 0
    for pattern in wanted:
        while at < len(printed) and not pattern.fullmatch(printed[at]):
            at += 1
        assert at < len(printed), f"not printed (in order): {pattern.pattern}\n{ran.stdout}"
        at += 1


@pytest.mark.parametrize("name", ["examples/service.flow", "examples/deployment.yaml"])
def test_the_files_the_session_names_exist(name: str) -> None:
    assert (ROOT / name).is_file()
