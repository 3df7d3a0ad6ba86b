"""Checking and compiling large flows: cost against flow size.

Generated flows of 1,000, 10,000 and 30,000 lines (states that reply with templates, ask with a
timeout, test an answer against a pattern, match keywords and go to the next state), checked
against examples/deployment.yaml:

1. `validate` (what `flowlang validate` runs: parse and check);
2. `load_project` (parse, check, compile, seal the graph's version, prepare the program).

Every round writes new texts (the template caches never answer for a round before), the sizes
interleaved; reported: the minimum and median over the rounds (wall clock, and this process's
CPU time beside it: on a shared machine the wall clock counts the neighbours' work too), the
ratio to the 1,000-line flow and of 30,000 to 10,000 lines (goals: 10,000 lines validate within
1 s; 30,000 lines within 3.5x 10,000: linear).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from flowlang import load_project
from flowlang.workspace import validate

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = ROOT / "examples" / "deployment.yaml"
SIZES = (1_000, 10_000, 30_000)
ROUNDS = 2


def generated_flow(lines: int, tag: str) -> str:
    """A valid flow of about `lines` lines; `tag` makes its texts differ from another round's."""
    out = [
        'flow "Generated"',
        'serve messages on web account "gbank-web"',
        "var note: text = not set",
        "",
    ]
    i = 0
    while len(out) < lines:
        out += [
            f"state s{i}:",
            f"    reply \"Hello {{{{ customer.name or 'there' }}}}, {tag} {i}.\"",
            f'    ask "Account number ({tag} {i})?" into note wait 10m:',
            "        on answer:",
            '            if trim(note) matches "^[0-9]{8,12}$":',
            f'                log "acct {{{{ note }}}} {tag} {i}"',
            "            else:",
            f"                reply \"Sorry {{{{ customer.name or 'friend' }}}}, {i}\"",
            "        on timeout:",
            "            end",
            "    match keywords:",
            f'        when "loan*", "mortgage{i}":',
            '            add skill "Loans"',
            f'        when "card*", "tarjeta{i}":',
            '            add skill "Cards"',
            f"    go to state s{i + 1}",
            "",
        ]
        i += 1
    out += [f"state s{i}:", '    route to queue "Retail Banking"', ""]
    return "\n".join(out)


def main() -> None:
    validate([ROOT / "flows"])  # imports, the grammar and the deployment loader, once
    timings: dict[tuple[str, int], list[float]] = {}
    cpu_times: dict[
        tuple[str, int], list[float]
    ] = {}  # this process's alone: the machine is shared
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(ROUNDS):
            for size in SIZES:
                for what in ("validate", "load_project"):
                    path = Path(tmp) / f"{what}-{size}-{round_}.flow"
                    path.write_text(generated_flow(size, f"r{round_}{what[0]}"), "utf-8")
                    start, cpu = time.perf_counter(), time.process_time()
                    if what == "validate":
                        ok = validate([path, DEPLOYMENT]).ok
                    else:
                        ok = load_project(path, DEPLOYMENT)[0] is not None
                    timings.setdefault((what, size), []).append(time.perf_counter() - start)
                    cpu_times.setdefault((what, size), []).append(time.process_time() - cpu)
                    assert ok, f"the generated {size}-line flow does not check"
    print(f"generated flows against examples/deployment.yaml ({ROUNDS} rounds, min / median)")
    for what in ("validate", "load_project"):
        base = min(timings[(what, SIZES[0])])
        for size in SIZES:
            values = timings[(what, size)]
            best = min(values)
            goal = "  (goal <= 1 s)" if (what, size) == ("validate", 10_000) else ""
            cpus = cpu_times[(what, size)]
            print(
                f"  {what:<12} {size:>6,} lines  {best:6.2f} s / {statistics.median(values):6.2f} s"
                f"  (CPU {min(cpus):.2f} s / {statistics.median(cpus):.2f} s)"
                f"  ×{best / base:5.1f} of 1,000 lines{goal}"
            )
        ratio = min(timings[(what, 30_000)]) / min(timings[(what, 10_000)])
        cpu_ratio = min(cpu_times[(what, 30_000)]) / min(cpu_times[(what, 10_000)])
        print(
            f"  {what:<12} 30,000 / 10,000 lines: ×{ratio:.2f} (CPU ×{cpu_ratio:.2f}; "
            "goal <= 3.5x, linear: 3x)"
        )


if __name__ == "__main__":
    main()
