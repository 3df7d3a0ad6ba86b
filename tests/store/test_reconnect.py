"""When a lost connection is opened again (`flowlang/store/reconnect.py`): at once after the
loss, then after delays doubling up to a cap, each jittered; logged once per loss, failure and
recovery."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.store.reconnect import Reconnect


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@given(
    first=st.floats(0.01, 2.0),
    cap=st.floats(0.01, 60.0),
    failures=st.integers(1, 40),
    fraction=st.floats(0.0, 1.0),
)
def test_each_delay_doubles_up_to_the_cap_and_is_drawn_between_half_and_all_of_it(
    first: float, cap: float, failures: int, fraction: float
) -> None:
    clock = Clock()
    reconnect = Reconnect(
        "flowlang-test", first=first, cap=cap, clock=clock, draw=lambda a, b: a + (b - a) * fraction
    )
    reconnect.lost("gone")
    assert reconnect.due()  # the first attempt at once
    for attempt in range(failures):
        ceiling = min(cap, first * 2**attempt)
        delay = reconnect.failed("refused")
        assert ceiling / 2 <= delay <= ceiling
        assert reconnect.wait() == pytest.approx(delay)
        assert not reconnect.due() or delay == 0
        clock.now += delay
        assert reconnect.due()
    reconnect.opened()
    assert not reconnect.down and reconnect.due()
    assert reconnect.failed("refused again") <= first  # a new loss starts the delays over


def test_a_loss_a_failed_attempt_and_the_recovery_are_logged_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    reconnect = Reconnect("flowlang-intake", clock=clock, draw=lambda _a, b: b)
    with caplog.at_level(logging.WARNING, logger="flowlang.store"):
        reconnect.lost("terminating connection due to administrator command\nDETAIL: x")
        reconnect.lost("again: not logged twice")
        reconnect.failed("Connection refused")
        reconnect.opened()
        reconnect.opened()  # open already: nothing to say
    assert [r.getMessage() for r in caplog.records] == [
        "flowlang-intake: connection to the store lost (terminating connection due to "
        "administrator command)",
        "flowlang-intake: cannot reach the store (Connection refused); attempt 1 failed, "
        "next in 0.1 s",
        "flowlang-intake: connection to the store open again (after 1 failed attempts)",
    ]
