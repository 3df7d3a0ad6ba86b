"""The interpreter benchmark compares like with like: `make bench` is not run in CI, so a change
to what the interpreter returns must fail here, not silently skew the figures."""

from __future__ import annotations

from benchmarks.bench_interpreter import check_the_comparisons, messaging_program


def test_the_hand_written_flow_gives_what_the_interpreter_gives() -> None:
    assert check_the_comparisons(messaging_program()) == 18
