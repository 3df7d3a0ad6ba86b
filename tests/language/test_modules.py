"""Shared modules: `use "common/identify.flow"` joins a module's tasks and variables to the
flow; what goes wrong (a missing file, a cycle, a clash, a flow where a module was meant) is
said at the `use` line, and a problem inside a module in the module's own file (FL132, FL133,
FL134, FL325, FL326)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlang import codes, load_project
from flowlang.language.formatter import format_text
from flowlang.workspace import render, validate

MODULE = """\
module "Identify"

var account_number: text = not set

# Asks for the account number when the channel gives no phone.
task identify outcomes known, unknown:
    if customer.phone is set:
        outcome known
    ask "Your account number?" into account_number wait 5m:
        on answer:
            outcome known
        on timeout:
            outcome unknown
"""


def _flow(name: str, queue: str, use: str = "common/identify.flow") -> str:
    return f"""\
flow "{name}"
use "{use}"

serve messages on web

state start:
    call task identify:
        on known:
            reply "Thanks, {{{{ account_number or 'customer' }}}}"
        on unknown:
            pass
    route to queue "{queue}"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    cwd = Path.cwd()
    os.chdir(tmp_path)  # diagnostics name files as a user passing relative paths sees them
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "identify.flow").write_text(MODULE, "utf-8")
    (tmp_path / "sales.flow").write_text(_flow("Sales", "Sales"), "utf-8")
    (tmp_path / "support.flow").write_text(_flow("Support", "Support"), "utf-8")
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def test_two_flows_use_one_module_and_each_graph_holds_its_tasks(folder: Path) -> None:
    ws = validate([Path(".")])
    assert ws.errors == [], render(ws)
    assert sorted(ws.flows) == ["sales.flow", "support.flow"]  # the module is checked, not a flow
    for name in ("sales.flow", "support.flow"):
        project, _ = load_project(Path(name))
        assert project is not None
        nodes = project.graph.nodes.items()
        tasks = {n.source.file for nid, n in nodes if nid.startswith("task:identify")}
        assert tasks == {"common/identify.flow"}


def test_editing_the_module_makes_a_new_version_of_each_flow(folder: Path) -> None:
    before, _ = load_project(Path("sales.flow"))
    module = folder / "common" / "identify.flow"
    module.write_text(MODULE.replace("wait 5m", "wait 10m"), "utf-8")
    after, _ = load_project(Path("sales.flow"))
    assert before is not None and after is not None
    assert before.graph.version != after.graph.version
    module.write_text(MODULE.replace("# Asks", "# It asks"), "utf-8")  # a comment only
    same, _ = load_project(Path("sales.flow"))
    assert same is not None and same.graph.version == before.graph.version


def test_a_problem_inside_a_module_is_shown_in_the_modules_file_once(folder: Path) -> None:
    broken = MODULE.replace("outcome known\n    ask", "outcome knwn\n    ask")
    (folder / "common" / "identify.flow").write_text(broken, "utf-8")
    ws = validate([Path(".")])
    shown = render(ws)
    wrong = [d for d in ws.errors if "has no outcome 'knwn'" in d.message]
    assert [(d.span.file, d.span.line) for d in wrong] == [("common/identify.flow", 8)]
    assert "--> common/identify.flow:8:" in shown
    assert " 8 |         outcome knwn" in shown


def test_fl132_a_missing_module_is_named_at_the_use_line(folder: Path) -> None:
    (folder / "sales.flow").write_text(_flow("Sales", "Sales", "common/identfy.flow"), "utf-8")
    ws = validate([Path("sales.flow")])
    (missing,) = [d for d in ws.errors if d.code == codes.MODULE_NOT_FOUND]
    assert (missing.span.file, missing.span.line) == ("sales.flow", 2)
    assert missing.message == "no module file 'common/identfy.flow'"
    assert missing.hint == "the path is relative to the folder of sales.flow"


def test_fl325_modules_that_use_each_other_name_the_cycle(folder: Path) -> None:
    (folder / "common" / "a.flow").write_text('module "A"\nuse "b.flow"\n', "utf-8")
    (folder / "common" / "b.flow").write_text('module "B"\nuse "a.flow"\n', "utf-8")
    (folder / "sales.flow").write_text(
        _flow("Sales", "Sales").replace(
            'use "common/identify.flow"', 'use "common/identify.flow"\nuse "common/a.flow"'
        ),
        "utf-8",
    )
    ws = validate([Path("sales.flow")])
    (cycle,) = [d for d in ws.errors if d.code == codes.MODULE_CYCLE]
    assert cycle.message == (
        "modules use each other in a cycle: common/a.flow -> common/b.flow -> common/a.flow"
    )
    assert (cycle.span.file, cycle.span.line) == ("common/b.flow", 2)


def test_fl134_a_task_named_like_the_flows_own_is_a_clash_naming_both_files(folder: Path) -> None:
    text = _flow("Sales", "Sales") + "\ntask identify outcomes known, unknown:\n    outcome known\n"
    (folder / "sales.flow").write_text(text, "utf-8")
    ws = validate([Path("sales.flow")])
    (clash,) = [d for d in ws.errors if d.code == codes.MODULE_NAME_CLASH]
    assert clash.message == (
        "task 'identify' is declared both in sales.flow and in common/identify.flow"
    )
    assert clash.related[0][0].file == "sales.flow"


def test_fl133_and_fl326_a_flow_is_not_a_module_and_a_module_is_not_a_flow(folder: Path) -> None:
    (folder / "sales.flow").write_text(_flow("Sales", "Sales", "support.flow"), "utf-8")
    (folder / "common" / "identify.flow").write_text(MODULE + "\nstate start:\n    end\n", "utf-8")
    ws = validate([Path(".")])
    found = [(d.code, d.span.file) for d in ws.errors]
    assert found[:2] == [
        (codes.NOT_IN_A_MODULE, "common/identify.flow"),
        (codes.NOT_A_MODULE, "sales.flow"),
    ]
    # nothing joined from a file that is no module: its task and variable are unknown
    assert (codes.UNKNOWN_TASK, "sales.flow") in found[2:]


def test_fmt_formats_a_module_and_the_use_lines() -> None:
    messy = (
        'module   "Identify"\nuse    "x.flow"\nvar a: text = not set\n'
        "task t outcomes ok:\n  outcome ok\n"
    )
    result = format_text(messy, "m.flow")
    assert result.text == (
        'module "Identify"\n\nuse "x.flow"\n\nvar a: text = not set\n\n'
        "task t outcomes ok:\n    outcome ok\n"
    )
