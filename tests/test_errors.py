"""One root error: every exception class flowlang defines is a `FlowError`, and those that were
`ValueError`s or a `RuntimeError` still are, so callers that catch those keep working."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import flowlang
from flowlang import codes
from flowlang.channels.inbound.fields import PayloadError
from flowlang.channels.outbound.adapters import DeliveryError
from flowlang.channels.registry import RegistryError
from flowlang.channels.signatures import SignatureError
from flowlang.diagnostics import Span, error
from flowlang.errors import FlowError, InputError
from flowlang.language.builder import BuildError
from flowlang.runtime.initiate import InitiateError
from flowlang.runtime.ports import AcdError


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(flowlang.__path__, "flowlang."):
        if module_info.name == "flowlang.__main__":  # importing it runs the CLI
            continue
        module = importlib.import_module(module_info.name)
        for _name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("flowlang"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_exception_class_flowlang_defines_derives_from_flow_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15  # the walk found the package's errors, not nothing
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, FlowError)]
    assert outside == []


@pytest.mark.parametrize(
    ("error_class", "kept"),
    [
        (SignatureError, ValueError),
        (PayloadError, ValueError),
        (RegistryError, ValueError),
        (AcdError, ValueError),
        (InitiateError, ValueError),
        (DeliveryError, RuntimeError),
    ],
)
def test_errors_keep_the_builtin_base_callers_catch(
    error_class: type[Exception], kept: type[Exception]
) -> None:
    assert issubclass(error_class, FlowError) and issubclass(error_class, kept)


def test_a_payload_error_is_caught_as_flow_error_with_its_message_and_fields() -> None:
    with pytest.raises(FlowError) as caught:
        raise PayloadError("whatsapp", "entry[0].changes", "expected a list")
    assert isinstance(caught.value, InputError) and isinstance(caught.value, PayloadError)
    assert str(caught.value) == "whatsapp payload: entry[0].changes: expected a list"
    assert caught.value.field == "entry[0].changes"


def test_a_delivery_error_keeps_its_message_and_permanence() -> None:
    problem = DeliveryError("HTTP 400 from the API", permanent=True, status=400)
    assert isinstance(problem, FlowError) and isinstance(problem, RuntimeError)
    assert str(problem) == "HTTP 400 from the API"
    assert problem.permanent and problem.status == 400 and problem.diagnostics == []


def test_a_build_error_carries_its_diagnostic_as_flow_errors_do() -> None:
    diagnostic = error(codes.BAD_DURATION, "a duration out of range", Span.point("x.flow", 3, 7))
    problem = BuildError(diagnostic)
    assert str(problem) == "a duration out of range"
    assert problem.diagnostic is diagnostic and problem.diagnostics == [diagnostic]
