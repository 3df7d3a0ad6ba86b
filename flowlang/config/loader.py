"""Load a deployment file: bytes -> YAML tree -> pydantic models -> cross-references.

Every problem becomes a diagnostic at the YAML's own `file:line:col`; a file with errors
gives `None` and all of its errors at once, never a traceback.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from flowlang import codes
from flowlang.config import positions, references, source
from flowlang.config.models import Deployment
from flowlang.diagnostics import Diagnostic, Span, error, listing, suggest

_CUSTOM_CODES = {
    "duration": codes.DEPLOYMENT_BAD_DURATION,
    "threading_window": codes.DEPLOYMENT_BAD_THREADING_WINDOW,
    "timezone": codes.DEPLOYMENT_BAD_TIME_ZONE,
    "hours": codes.DEPLOYMENT_BAD_HOURS,
}


def load_deployment(path: str | Path) -> tuple[Deployment | None, list[Diagnostic]]:
    """Read and validate a deployment file; `None` and diagnostics when it has errors."""
    filename = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, [
            error(
                codes.DEPLOYMENT_CANNOT_READ,
                f"cannot read the deployment file: {reason}",
                Span.whole_file(filename),
            )
        ]
    return load_deployment_bytes(data, filename)


def load_deployment_bytes(data: bytes, filename: str) -> tuple[Deployment | None, list[Diagnostic]]:
    """Validate deployment file contents given as bytes (see `load_deployment`)."""
    text, problems = source.decode(data, filename)
    if text is None:
        return None, problems
    return load_deployment_text(text, filename)


def load_deployment_text(text: str, filename: str) -> tuple[Deployment | None, list[Diagnostic]]:
    """Validate deployment file contents given as text (see `load_deployment`)."""
    tree, index, problems = _parse(text, filename)
    if tree is None or index is None:
        return None, problems
    deployment, model_problems = validate_model(tree, index, Deployment)
    if deployment is None:
        return None, _unique(problems + model_problems)
    deployment._positions = index
    problems += references.check(deployment, index)
    if any(d.is_error for d in problems):
        return None, problems
    return deployment, problems


M = TypeVar("M", bound=BaseModel)


def validate_model(
    tree: Any, index: positions.PositionIndex, model: type[M]
) -> tuple[M | None, list[Diagnostic]]:
    """Validate a parsed YAML tree against `model`; errors at the YAML's own positions, with
    did-you-mean for unknown keys. Other YAML files of the project (simulation specs) use it."""
    try:
        return model.model_validate(positions.to_plain(tree)), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return None, _unique([_diagnostic(e, index, model) for e in errors])


def load_yaml_model(text: str, filename: str, model: type[M]) -> tuple[M | None, list[Diagnostic]]:
    """Parse YAML text and validate it against `model` (see `validate_model`)."""
    tree, index, problems = _parse(text, filename)
    if tree is None or index is None:
        return None, problems
    return validate_model(tree, index, model)


def _parse(
    text: str, filename: str
) -> tuple[Any, positions.PositionIndex | None, list[Diagnostic]]:
    """The YAML tree and its positions, or the problems that stop it being read."""
    # YAML also ends lines at a lone \r; one kind of line break keeps every line count in step.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    problems = source.control_characters(text, filename)
    if problems:
        return None, None, problems
    tree, problems = source.parse(text, filename)
    if tree is None:
        return None, None, problems
    return tree, positions.build(tree, text, filename), problems


def _diagnostic(
    detail: ErrorDetails, index: positions.PositionIndex, root: type[BaseModel] = Deployment
) -> Diagnostic:
    loc = _without_union_tags(tuple(detail["loc"]), root)
    kind = detail["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1], root)
        hint = suggest(key, allowed, listing("allowed here", sorted(allowed)) if allowed else "")
        return error(
            codes.DEPLOYMENT_UNKNOWN_KEY, f"unknown key {key!r}", index.key_span(loc), hint=hint
        )
    if kind == "missing":
        where = _describe(loc[:-1])
        return error(
            codes.DEPLOYMENT_MISSING_KEY,
            f"{where} needs the key {loc[-1]!r}",
            index.key_span(loc[:-1]),
            hint=f"add `{loc[-1]}:`",
        )
    ctx = detail.get("ctx") or {}
    if loc and loc[-1] == "[key]":  # the key of a mapping is not one of the allowed names
        key = str(loc[-2]) if len(loc) > 1 else ""
        return error(
            codes.DEPLOYMENT_BAD_VALUE,
            f"{_describe(loc[:-2])}: {key!r} is not allowed as a key here",
            index.key_span(loc[:-1]),
            hint=_value_hint(detail, key),
        )
    code = _CUSTOM_CODES.get(kind, codes.DEPLOYMENT_BAD_VALUE)
    message = str(ctx.get("message") or detail["msg"])
    hint = str(ctx.get("hint") or _value_hint(detail))
    if loc and str(loc[-1]).endswith("]"):
        loc = loc[:-1]
    if code == codes.DEPLOYMENT_BAD_VALUE:
        message = f"{_describe(loc)}: {message[0].lower()}{message[1:]}"
    return error(code, message, index.value_span(loc), hint=hint)


def _without_union_tags(loc: tuple[str | int, ...], root: type[BaseModel]) -> tuple[str | int, ...]:
    """pydantic puts the tried member type's name into the location of a union's errors."""
    out: list[str | int] = []
    annotation: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if _is_union(annotation) and isinstance(part, str) and part in _member_tags(annotation):
            annotation = _member(annotation, part)
            continue
        out.append(part)
        annotation = _step(annotation, part) if annotation is not None else None
    return tuple(out)


def _is_union(annotation: Any) -> bool:
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) in (Union, types.UnionType) and len(members) > 1


def _tag(member: Any) -> str:
    return getattr(member, "__name__", str(member))


def _member_tags(annotation: Any) -> set[str]:
    return {_tag(a) for a in typing.get_args(annotation)}


def _member(annotation: Any, tag: str) -> Any:
    return next((a for a in typing.get_args(annotation) if _tag(a) == tag), None)


def _describe(loc: tuple[str | int, ...]) -> str:
    if not loc:
        return "the file"
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in loc]
    return ".".join(parts).replace(".[", "[")


def _value_hint(detail: ErrorDetails, value: object = None) -> str:
    ctx = detail.get("ctx") or {}
    if "expected" in ctx:
        given = detail.get("input") if value is None else value
        choices = [c.strip(" '") for c in str(ctx["expected"]).replace(" or ", ", ").split(",")]
        candidates = choices if isinstance(given, str) else []
        return suggest(str(given), candidates, f"use one of {ctx['expected']}")
    bounds = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    for key, words in bounds.items():
        if key in ctx:
            return f"use a value {words} {ctx[key]}"
    if detail["type"].startswith("dict"):
        return "write a mapping of `key: value` lines"
    if detail["type"].startswith("list"):
        return "write a list: [a, b] or one `- item` per line"
    return ""


def _allowed_keys(loc: tuple[str | int, ...], root: type[BaseModel]) -> list[str]:
    """The keys the model at `loc` accepts (for did-you-mean on an unknown key)."""
    annotation: Any = root
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model_of(annotation)
    return list(model.model_fields) if model is not None else []


def _step(annotation: Any, part: str | int) -> Any:
    model = _model_of(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (dict,) and len(args) == 2:
        return args[1]
    if origin in (list,) and args:
        return args[0]
    if origin is typing.Annotated and args:
        return _step(args[0], part)
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _unique(problems: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, int, int]] = set()
    out = []
    for d in problems:
        key = (d.code, d.span.line, d.span.column)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
