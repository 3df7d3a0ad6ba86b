"""One rule for the deployment file on every command that reads one (docs/cli.md, "The
deployment file"): `-d FILE` when given, else `deployment.yaml` beside the command's input, else
in the working directory; a command that needs one and finds none says where it looked.

A deployment file that cannot be loaded shows which file a command read: found, its error is
shown at its own line; given with `-d` beside it, the command never reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner

from flowlang.cli import main
from tests.cli.test_cli_structure import TAKES_A_DEPLOYMENT
from tests.patience import scaled
from tests.ports import address_in_use, free_port

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples" / "deployment.yaml"
BROKEN = "queues:\n  Retail Banking:\n    answer_within: soon\n"
NONE_FOUND = "needs a deployment file: give -d FILE (no deployment.yaml or deployment.yml in"


class Site:
    """A folder `work/` (the working directory) with `flows/` and `sims/` in it, and a good
    deployment file outside it (`good`) for `-d`."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.flows = self.work / "flows"
        self.sims = self.work / "sims"
        for folder in (self.flows, self.sims):
            folder.mkdir(parents=True)
        self.flow = self.flows / "messaging.flow"
        self.flow.write_text((ROOT / "flows" / "messaging.flow").read_text("utf-8"), "utf-8")
        self.sim = self.sims / "simulation.yaml"
        self.sim.write_text((ROOT / "examples" / "simulation.yaml").read_text("utf-8"), "utf-8")
        self.good = root / "elsewhere" / "gbank.yaml"
        self.good.parent.mkdir()
        self.good.write_text(EXAMPLE.read_text("utf-8"), "utf-8")
        self.store = root / "cc.db"

    def put(self, folder: Path, text: str) -> Path:
        path = folder / "deployment.yaml"
        path.write_text(text, "utf-8")
        return path


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    made = Site(tmp_path)
    monkeypatch.chdir(made.work)
    return made


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _broken_file_was_read(out: str, err: str, path: str) -> bool:
    """A loaded deployment file with `answer_within: soon` is reported at its own line."""
    return f"{path}:3:" in out + err and "answer_within" in out + err


# --------------------------------------------------------------- the commands, one by one


@pytest.mark.parametrize(
    "command",
    [
        ["compile", "-o", "graph.json"],
        ["graph", "--format", "mermaid"],
        ["dry-run", "-m", str(ROOT / "examples" / "messages.yaml"), "--allow-blocked"],
    ],
    ids=lambda command: command[0],
)
def test_flow_commands_find_it_beside_the_flow_and_d_wins(site: Site, command: list[str]) -> None:
    beside = site.put(site.flows, BROKEN)
    name, *options = command
    code, out, err = run(name, str(site.flow), *options)
    assert code == 1, out + err
    assert f"using the deployment file {beside}" in err
    assert _broken_file_was_read(out, err, str(beside))
    code, out, err = run(name, str(site.flow), *options, "-d", str(site.good))
    assert code == 0, out + err
    assert "using the deployment file" not in err
    beside.write_text(EXAMPLE.read_text("utf-8"), "utf-8")
    code, out, err = run(name, str(site.flow), *options)
    assert code == 0 and f"using the deployment file {beside}" in err, out + err


def test_replay_finds_it_beside_the_flow_then_in_the_working_directory_and_d_wins(
    site: Site,
) -> None:
    run("users", "add", "admin", "--role", "admin", "--store", str(site.store))
    site.put(site.work, BROKEN)
    code, out, err = run("replay", "--store", str(site.store), str(site.flow), "--all")
    assert code == 1 and "using the deployment file deployment.yaml" in err
    assert _broken_file_was_read(out, err, "deployment.yaml")
    beside = site.put(site.flows, EXAMPLE.read_text("utf-8"))
    code, out, err = run("replay", "--store", str(site.store), str(site.flow), "--all")
    assert code == 0, out + err
    assert f"using the deployment file {beside}" in err  # beside the flow comes first
    beside.write_text(BROKEN, "utf-8")
    code, out, err = run(
        "replay", "--store", str(site.store), str(site.flow), "--all", "-d", str(site.good)
    )
    assert code == 0 and "using the deployment file" not in err, out + err


def test_simulate_finds_it_beside_the_simulation_file_and_d_wins(site: Site) -> None:
    code, _out, err = run("simulate", str(site.sim))
    assert code == 2 and "no agents" in err and "deployment.yaml beside the simulation" in err
    beside = site.put(site.sims, EXAMPLE.read_text("utf-8"))
    code, out, err = run("simulate", str(site.sim))
    assert code == 0, out + err
    assert f"using the deployment file {beside}" in err
    assert "7 agent(s)" in out and "Retail Banking" in out  # the deployment's agents and queues
    beside.write_text(BROKEN, "utf-8")
    code, out, err = run("simulate", str(site.sim))
    assert code == 1 and _broken_file_was_read(out, err, str(beside))
    code, out, err = run("simulate", str(site.sim), "-d", str(site.good))
    assert code == 0 and "7 agent(s)" in out and "using the deployment file" not in err


def test_report_finds_it_in_the_working_directory_and_d_wins(site: Site) -> None:
    run("users", "add", "admin", "--role", "admin", "--store", str(site.store))
    code, out, err = run("report", "queues", "--store", str(site.store))
    assert code == 0 and "using the deployment file" not in err  # none: reports all the same
    site.put(site.work, BROKEN)
    code, out, err = run("report", "queues", "--store", str(site.store))
    assert code == 1 and "using the deployment file deployment.yaml" in err
    assert _broken_file_was_read(out, err, "deployment.yaml")
    code, out, err = run("report", "queues", "--store", str(site.store), "-d", str(site.good))
    assert code == 0 and "Queue performance" in out and "using the deployment" not in err


def test_send_finds_it_in_the_working_directory_d_wins_and_none_is_a_usage_error(
    site: Site,
) -> None:
    args = ["send", "--store", str(site.store), "--channel", "sms", "--to", "+447700900999"]
    args += ["--template", "welcome"]
    code, out, err = run(*args)
    assert code == 2 and f"flowlang send {NONE_FOUND} ./)" in err
    assert not site.store.exists()  # nothing was sent or stored
    site.put(site.work, EXAMPLE.read_text("utf-8"))
    code, out, err = run(*args)
    assert code == 0 and out.startswith("allowed: sms"), out + err
    assert "using the deployment file deployment.yaml" in err
    site.put(site.work, BROKEN)
    code, out, err = run(*args)
    assert code == 1 and _broken_file_was_read(out, err, "deployment.yaml")
    code, out, err = run(*args, "-d", str(site.good))
    assert code == 0 and out.startswith("allowed: sms"), out + err


def test_users_add_an_agent_finds_it_in_the_working_directory_and_d_wins(site: Site) -> None:
    add = ["users", "add", "--role", "agent", "--store", str(site.store)]
    code, out, err = run(*add, "alice")
    assert code == 2 and f"flowlang users add --role agent {NONE_FOUND} ./)" in err
    site.put(site.work, EXAMPLE.read_text("utf-8"))
    code, out, err = run(*add, "mallory")
    assert code == 2 and "'mallory' is not an agent of deployment.yaml" in err
    code, out, err = run(*add, "alice")
    assert code == 0 and out.startswith("flt_"), out + err
    site.put(site.work, BROKEN)
    code, out, err = run(*add, "bob")
    assert code == 1 and _broken_file_was_read(out, err, "deployment.yaml")
    code, out, err = run(*add, "bob", "-d", str(site.good))
    assert code == 0 and "using the deployment file" not in err, out + err
    # a supervisor needs no deployment file, so none is looked for
    code, out, err = run("users", "add", "sam", "--role", "supervisor", "--store", str(site.store))
    assert code == 0 and "deployment" not in err


def test_serve_without_a_deployment_anywhere_stops_before_opening_anything(site: Site) -> None:
    code, _out, err = run("serve", str(site.flow), "--store", str(site.store))
    assert code == 2
    assert f"flowlang serve {NONE_FOUND} {site.flows}/ or ./)" in err
    assert not site.store.exists()


def test_serve_with_d_never_reads_the_file_beside_the_flows(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    site.put(site.flows, BROKEN)
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    args = ["serve", str(site.flow), "--store", str(site.store), "--insecure-dev"]
    code, out, err = run(*args)
    assert code == 2 and not served and "answer_within" in err, out + err
    code, out, err = run(*args, "-d", str(site.good))
    assert code == 0 and len(served) == 1, out + err
    assert "using the deployment file" not in err


def _serve(site: Site, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flowlang",
                "serve",
                "flows/messaging.flow",
                "--store",
                str(site.store),
                "--port",
                str(port),
                "--insecure-dev",
                "--log-level",
                "warning",
            ],
            cwd=site.work,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def _ready(process: subprocess.Popen[bytes], url: str) -> bool:
    """Wait until the service answers /ready (False: it exited first, or took too long)."""
    deadline = time.monotonic() + scaled(60)
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/ready", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


@pytest.fixture
def serving(site: Site) -> Iterator[tuple[subprocess.Popen[bytes], bool, Path]]:
    """`flowlang serve` as a real process, whether it became ready, and its log; on another
    port when another process took the first before it could bind it."""
    site.put(site.flows, EXAMPLE.read_text("utf-8"))
    log = site.work.parent / "serve.log"
    for _ in range(3):
        port = free_port()
        process = _serve(site, port, log)
        ready = _ready(process, f"http://127.0.0.1:{port}")
        if ready or process.poll() is None or not address_in_use(log.read_text()):
            break
    try:
        yield process, ready, log
    finally:
        process.terminate()
        process.wait(15)


def test_serve_finds_it_beside_the_flows_as_a_real_process(
    serving: tuple[subprocess.Popen[bytes], bool, Path],
) -> None:
    _process, ready, log = serving
    assert ready, log.read_text()
    assert "using the deployment file flows/deployment.yaml" in log.read_text()


# --------------------------------------------------------------- the rule holds everywhere


def test_no_command_that_reads_a_deployment_requires_d() -> None:
    def commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
        found: dict[str, click.Command] = {}
        for name, command in group.commands.items():
            found[prefix + name] = command
            if isinstance(command, click.Group):
                found.update(commands(command, f"{prefix}{name} "))
        return found

    required = {
        name
        for name, command in commands(main).items()
        for param in command.params
        if param.name == "deployment" and param.required
    }
    assert not required and TAKES_A_DEPLOYMENT
