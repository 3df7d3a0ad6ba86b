"""A small synchronous LSP client for the tests: starts `flowlang lsp` as a subprocess and speaks
JSON-RPC with Content-Length framing over its real stdin/stdout, as an editor does."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

TIMEOUT = 30.0


class LspClient:
    """`flowlang lsp` in a subprocess, initialised; use as a context manager."""

    def __init__(self, cwd: Path, root: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flowlang", "lsp"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.cwd = cwd
        self.root = root or cwd
        self._next_id = 0
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def __enter__(self) -> LspClient:
        self.initialize = self.request(
            "initialize",
            {"processId": None, "rootUri": self.root.as_uri(), "capabilities": {}},
        )
        self.notify("initialized", {})
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()

    # ------------------------------------------------------------ wire

    def _read(self, stream: BinaryIO) -> None:
        while True:
            headers: dict[str, str] = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                text = line.decode("ascii").strip()
                if not text:
                    break
                key, _, value = text.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self._messages.put(json.loads(body.decode("utf-8")))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.process.stdin is not None
        self.process.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any) -> Any:
        self._next_id += 1
        ident = self._next_id
        self._send({"id": ident, "method": method, "params": params})
        while True:
            message = self._take()
            if message.get("id") == ident and "method" not in message:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result")

    def _take(self) -> dict[str, Any]:
        try:
            message = self._messages.get(timeout=TIMEOUT)
        except queue.Empty:
            stderr = b""
            if self.process.poll() is not None and self.process.stderr is not None:
                stderr = self.process.stderr.read()
            raise AssertionError(f"no message from the server; stderr: {stderr!r}") from None
        if "method" in message and "id" in message:  # a request from the server: answer it
            self._send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        return message

    def diagnostics(self, uri: str, version: int | None = None) -> list[dict[str, Any]]:
        """The diagnostics published for `uri` (for that document version, when given)."""
        while True:
            for note in reversed(self.notifications):
                params = note["params"]
                if (
                    note["method"] == "textDocument/publishDiagnostics"
                    and params["uri"] == uri
                    and (version is None or params.get("version") == version)
                ):
                    return list(params["diagnostics"])
            self._take()

    # ------------------------------------------------------------ documents

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "flowlang",
                    "version": 1,
                    "text": path.read_text("utf-8") if text is None else text,
                }
            },
        )
        return uri

    def change(self, uri: str, version: int, text: str) -> None:
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}],
            },
        )

    def at(self, method: str, uri: str, line: int, character: int, **extra: Any) -> Any:
        """A request about a position (0-based line and UTF-16 character, as on the wire)."""
        params = {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            **extra,
        }
        return self.request(method, params)
