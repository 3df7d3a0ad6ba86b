"""A trivial ASGI endpoint under the service's uvicorn settings: what HTTP alone costs here.

`python -m benchmarks.asgi_floor PORT` serves every POST with the webhook's 200 answer after
reading the body, with the protocol, event loop and limits `flowlang serve` uses and nothing
else: no signature, no store, no flow. bench_service.py measures it in the same run as the
service, so that the service's figures can be read against what this machine allows.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from flowlang.service.protocol import with_header_timeout

ANSWER = b'{"accepted":1,"duplicates":0,"dead_letters":0}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        http=with_header_timeout(10.0),
        loop="uvloop",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
