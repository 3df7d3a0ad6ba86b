"""An ASGI app on a real uvicorn server in a thread of the test's process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def threaded_server(app: Any, port: int = 0, **config: Any) -> Iterator[int]:
    """`app` served on 127.0.0.1:`port` (0: a port the kernel picks) until the block ends;
    yields the port it listens on. `config`: more `uvicorn.Config` settings."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(15)
