"""`flowlang validate` takes the account a flow's `serve` line names exactly when the engine
finds that account at run time (`Account.answers_to`): a handle with or without its `@`, a
number with or without its `+`, any case, the X user id. A name of no account is still FL116,
with the declared spelling as its suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlang.runtime.accounts import Accounts
from flowlang.workspace import render, validate
from tests.service.helpers import EXAMPLE_DEPLOYMENT
from tests.service.test_account_names import DEPLOYMENT, spellings

ENGINE = Accounts.from_deployment(DEPLOYMENT)
SCOPES = {"x_public": "posts and mentions", "facebook_page": "posts and comments"}
CASES = [
    (channel, spelled)
    for channel, entry in DEPLOYMENT.channels.items()
    for account in entry.accounts
    for value in (account.name, account.id, account.user_id)
    if value
    for spelled in spellings(value)
]


def check(tmp_path: Path, channel: str, account: str) -> str:
    flow = tmp_path / "serve.flow"
    flow.write_text(
        f'flow "Serve"\nserve {SCOPES.get(channel, "messages")} on {channel} account "{account}"\n'
        '\nstate start:\n    route to queue "Retail Banking"\n',
        "utf-8",
    )
    return render(validate([flow, EXAMPLE_DEPLOYMENT]))


@pytest.mark.parametrize(("channel", "spelled"), CASES)
def test_a_serve_line_takes_every_name_the_engine_finds(
    tmp_path: Path, channel: str, spelled: str
) -> None:
    assert ENGINE.find(channel, spelled) is not None  # the premise: it matches at run time
    assert check(tmp_path, channel, spelled) == ""


@pytest.mark.parametrize(
    ("channel", "stranger", "declared"),
    [
        ("x_public", "@GbankSocia", "@GbankSocial"),
        ("whatsapp", "+44 20 7946 0000", "+442079460000"),
        ("whatsapp", "442079460001", "+442079460000"),
        ("messenger", "gbamk", "GBank"),
    ],
)
def test_a_name_of_no_account_is_refused_with_its_declared_spelling(
    tmp_path: Path, channel: str, stranger: str, declared: str
) -> None:
    assert ENGINE.find(channel, stranger) is None
    out = check(tmp_path, channel, stranger)
    assert f"error[FL116]: no {channel} account {stranger!r}" in out
    assert f"did you mean {declared!r}?" in out
