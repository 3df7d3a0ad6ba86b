"""The senders of a deployment, from its channels' `connection` and the environment."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import httpx

from flowlang.channels.outbound.adapters import DeliveryError
from flowlang.channels.registry import ChannelRules, builtin_registry, load_registry
from flowlang.channels.senders.vendor import Credentials, VendorSender
from flowlang.config.models import Channel, Deployment
from flowlang.config.secrets import missing_why, secret_in
from flowlang.errors import InputError
from flowlang.runtime.ports import OutboundAdapter, OutboundMessage


class SenderSetupError(InputError):
    """A sender cannot be set up: a connection, an environment variable or an id is missing."""


class VendorSenders:
    """One outbound adapter for all channels: each message goes to its channel's sender. A
    channel with no vendor API (the web widget) goes to `fallback`; any other channel without
    a sender is refused (a permanent error: the message is kept as a dead letter, not dropped)."""

    name = "vendor"

    def __init__(
        self,
        senders: Mapping[str, OutboundAdapter],
        fallback: OutboundAdapter | None = None,
        clients: Iterable[httpx.Client] = (),
        vendor_channels: Iterable[str] | None = None,
    ) -> None:
        self.senders = dict(senders)
        self.fallback = fallback
        self._clients = list(clients)
        known = vendor_channels if vendor_channels is not None else _vendor_channels()
        self.vendor_channels = set(known)

    def send(self, message: OutboundMessage) -> str | None:
        """Send through the message's channel; the vendor's id of it when it gives one."""
        sender = self.senders.get(message.channel)
        if sender is None and message.channel not in self.vendor_channels:
            sender = self.fallback
        if sender is None:
            raise DeliveryError(
                f"no sender for {message.channel}: the deployment names no send credentials "
                f"for it (channels.{message.channel}.connection.access_token_env)",
                permanent=True,
            )
        return sender.send(message)

    def close(self) -> None:
        """Close the HTTP connections the senders keep open."""
        for client in self._clients:
            client.close()


def senders_for(
    deployment: Deployment,
    environ: Mapping[str, str] | None = None,
    *,
    channels: Iterable[str] | None = None,
    fallback: OutboundAdapter | None = None,
    timeout: float = 10.0,
) -> VendorSenders:
    """A sender for each of `channels` (by default every channel whose `connection` names
    send credentials: `access_token_env`, or Twilio's `account_sid_env`), authorised from the
    environment variables its connection names. SenderSetupError lists every channel and
    variable missing."""
    env = os.environ if environ is None else environ
    registry = _registry(deployment)
    wanted = list(channels) if channels is not None else sending_channels(deployment)
    problems: list[str] = []
    senders: dict[str, OutboundAdapter] = {}
    client = httpx.Client(timeout=timeout)
    for key in wanted:
        rules = registry.get(key)
        if rules is None or rules.send is None:
            problems.append(f"channels.{key}: {key} has no vendor send API to send through")
            continue
        declared = deployment.channels.get(key)
        found = _credentials(key, rules, declared, env, problems)
        numbers = _phone_number_ids(key, declared, problems) if key == "whatsapp" else {}
        if found is not None and declared is not None and declared.connection is not None:
            senders[key] = VendorSender(
                rules,
                found,
                api_base=declared.connection.api_base,
                phone_number_ids=numbers,
                client=client,
            )
    if problems:
        client.close()
        raise SenderSetupError("cannot send through the vendors:\n  " + "\n  ".join(problems))
    vendor_channels = [key for key, rules in registry.items() if rules.send is not None]
    return VendorSenders(senders, fallback, [client], vendor_channels)


def sending_channels(deployment: Deployment) -> list[str]:
    """The deployment's channels whose connection names send credentials."""
    registry = _registry(deployment)
    out: list[str] = []
    for key, channel in deployment.channels.items():
        rules = registry.get(key)
        connection = channel.connection
        if rules is None or rules.send is None or connection is None:
            continue
        named = connection.access_token_env or (
            rules.send.auth == "basic" and connection.account_sid_env
        )
        if named:
            out.append(key)
    return out


def _vendor_channels() -> list[str]:
    return [key for key, rules in builtin_registry().items() if rules.send is not None]


def _registry(deployment: Deployment) -> dict[str, ChannelRules]:
    overrides = {key: dict(channel.rules) for key, channel in deployment.channels.items()}
    return load_registry(overrides) if any(overrides.values()) else builtin_registry()


def _credentials(
    key: str,
    rules: ChannelRules,
    declared: Channel | None,
    env: Mapping[str, str],
    problems: list[str],
) -> Credentials | None:
    if declared is None or declared.connection is None:
        needs = "account_sid_env and access_token_env" if key == "sms" else "access_token_env"
        problems.append(f"channels.{key}.connection: missing (sending needs {needs})")
        return None
    connection = declared.connection
    basic = rules.send is not None and rules.send.auth == "basic"
    # Twilio's auth token signs its webhooks and authorises sends: either key may name it.
    token_key = "access_token_env"
    if basic and connection.access_token_env is None and connection.signing_secret_env:
        token_key = "signing_secret_env"
    needed = [token_key] + (["account_sid_env"] if basic else [])
    values: dict[str, str] = {}
    for field in needed:
        variable = getattr(connection, field)
        if variable is None:
            problems.append(f"channels.{key}.connection.{field}: missing")
        elif (value := secret_in(env, variable)) is None:
            problems.append(
                f"channels.{key}.connection.{field}: the environment variable {variable} "
                + missing_why(env, variable)
            )
        else:
            values[field] = value
    if len(values) < len(needed):
        return None
    return Credentials(values[token_key], values.get("account_sid_env"))


def _phone_number_ids(key: str, declared: Channel | None, problems: list[str]) -> dict[str, str]:
    """WhatsApp sends go from a phone-number id: each account's, by the `account_key` of each
    name it answers to (its id, its number with or without `+`, its name in any case)."""
    accounts = declared.accounts if declared is not None else []
    if not accounts:
        problems.append(f"channels.{key}.accounts: none declared (each needs a phone_number_id)")
    out: dict[str, str] = {}
    for account in accounts:
        if not account.phone_number_id:
            problems.append(
                f"channels.{key}.accounts[{account.name}].phone_number_id: missing (the Cloud "
                "API's id of the number, from WhatsApp Manager)"
            )
            continue
        for name in account.answers_to():
            out[name] = account.phone_number_id
    return out
