"""Reading a secret from the environment variable a deployment's `connection` names."""

from __future__ import annotations

from collections.abc import Mapping


def secret_in(env: Mapping[str, str], variable: str) -> str | None:
    """The variable's value; None when it is unset, empty or only whitespace (a blank secret
    would sign and authorise nothing, so it counts as missing)."""
    value = env.get(variable)
    return value if value is not None and value.strip() else None


def missing_why(env: Mapping[str, str], variable: str) -> str:
    """Why `secret_in` found nothing: "is not set", or "is set but blank"."""
    return "is set but blank" if variable in env else "is not set"
