"""The root error type. Every error flowlang raises for bad input is a `FlowError`."""

from __future__ import annotations

from collections.abc import Sequence

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span


class FlowError(Exception):
    """Root of flowlang's errors; carries diagnostics when the input can be pointed at."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


class InputError(FlowError):
    """User input (flow, YAML, payload, argument) that cannot be used; see `diagnostics`."""


class FlowRuntimeError(FlowError):
    """A flow failed while running; `span` points at the admin's own line."""

    def __init__(
        self, message: str, span: Span | None = None, code: str = codes.RUNTIME_ERROR
    ) -> None:
        super().__init__(message)
        self.span = span
        self.code = code
