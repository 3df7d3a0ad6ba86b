"""The engine process's end of its front's wake pipe (`engine_main.FrontPipe`): every write of
the front is either found by the worker (`woken`, before a call) or already turned into a
wake-up, never neither (docs/service.md, "Two processes"); the pipe's end is heard."""

from __future__ import annotations

import os
import threading

from flowlang.service.engine_main import FrontPipe


def test_each_write_is_found_by_woken_or_has_woken_the_worker_already() -> None:
    read_end, write_end = os.pipe()
    wakes: list[int] = []
    ended = threading.Event()
    pipe = FrontPipe(read_end, lambda: wakes.append(1), ended.set)
    found = 0
    try:
        for _ in range(300):
            before = len(wakes)
            os.write(write_end, b"\0")
            if pipe.woken():
                found += 1
            else:
                assert len(wakes) > before, "a write neither found nor turned into a wake-up"
        assert not pipe.woken()  # each write taken once
    finally:
        os.close(write_end)
    assert ended.wait(10), "the pipe's end was not heard"
    pipe.thread.join(10)
    os.close(read_end)
    assert found + len(wakes) >= 300
