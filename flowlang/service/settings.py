"""What `flowlang serve` is told: the flow, the deployment, the store, where to listen, limits.

`channel_secrets` reads each channel's webhook secrets from the environment variables the
deployment's `channels.<channel>.connection` names; a channel whose signing secret is not
configured (its variable unset, empty or only whitespace) stops the service from starting,
unless it runs with `insecure_dev`.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlang.config.secrets import missing_why, secret_in
from flowlang.errors import InputError

if TYPE_CHECKING:
    from flowlang.config import Deployment


class ServiceConfigError(InputError, ValueError):
    """The service cannot start as configured (the message says what to change)."""


@dataclass(frozen=True)
class Settings:
    """How one service process runs (the defaults are `flowlang serve`'s)."""

    flows: tuple[Path, ...]
    deployment: Path
    store: str | Path  # a SQLite file or a postgresql:// URL
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # the URL the vendors call (behind a proxy), for Twilio
    advertise_url: str | None = None  # where other processes reach this one (PostgreSQL)
    insecure_dev: bool = False  # accept unsigned webhooks, with a warning on each
    environment: str | None = None  # the deployment environment whose params the flow uses
    body_limit: int = 1024 * 1024  # bytes; a larger request body gets 413
    max_events: int = 1000  # events in one webhook request; more: one dead letter, none read
    header_timeout: float = 10.0  # seconds for a client to send a request's headers
    body_timeout: float = 10.0  # seconds for a request's whole body to arrive
    keep_alive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    limit_concurrency: int = 1000  # open connections at most; a request beyond gets 503
    backlog: int = 2048  # connections the kernel queues before the service accepts them
    delivery_interval: float = 1.0  # seconds between two passes over the outbox's retries
    max_batch: int = 256  # inbound requests made durable in one transaction at most

    def advertised(self) -> str:
        """The URL other processes on the same PostgreSQL store forward the API to."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def to_json(self) -> str:
        """The settings as JSON (handed to the engine process: `engine_main.py`)."""
        return json.dumps(asdict(self), default=str)

    @staticmethod
    def from_json(text: str) -> Settings:
        """The settings `to_json` wrote."""
        fields: dict[str, Any] = json.loads(text)
        store = fields["store"]
        return Settings(
            **{
                **fields,
                "flows": tuple(Path(flow) for flow in fields["flows"]),
                "deployment": Path(fields["deployment"]),
                "store": store if "://" in store else Path(store),
            }
        )


@dataclass(frozen=True)
class ChannelSecrets:
    """A channel's webhook secrets, read from the environment (None: not configured)."""

    signing_secret: str | None
    verify_token: str | None


def channel_secrets(
    deployment: Deployment, insecure_dev: bool, environ: Mapping[str, str] | None = None
) -> dict[str, ChannelSecrets]:
    """Each deployment channel's webhook secrets. Raises ServiceConfigError naming the channel
    and the variable when a signing secret is not configured or its variable is unset (unless
    `insecure_dev`: such a channel's webhooks are then accepted unsigned)."""
    env = os.environ if environ is None else environ
    secrets: dict[str, ChannelSecrets] = {}
    problems: list[str] = []
    for name, channel in deployment.channels.items():
        connection = channel.connection
        signing_env = connection.signing_secret_env if connection else None
        verify_env = connection.verify_token_env if connection else None
        signing = secret_in(env, signing_env) if signing_env else None
        verify = secret_in(env, verify_env) if verify_env else None
        key = f"channels.{name}.connection.signing_secret_env"
        if signing is None and signing_env:
            why = missing_why(env, signing_env)
            problems.append(f"channel {name}: the environment variable {signing_env} ({key}) {why}")
        elif signing is None:
            problems.append(
                f"channel {name}: no signing secret configured; name the environment variable "
                f"that holds it in {key}"
            )
        secrets[name] = ChannelSecrets(signing, verify)
    if problems and not insecure_dev:
        raise ServiceConfigError(
            "webhook signatures cannot be checked, so the service does not start:\n  "
            + "\n  ".join(problems)
            + "\n(--insecure-dev accepts unsigned webhooks, for development only)"
        )
    return secrets
