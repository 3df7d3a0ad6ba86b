"""`/metrics` answers only the scrapers that send the deployment's metrics token; with none
configured it answers no one; `/health` and `/ready` stay open to load balancers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from flowlang.config import load_deployment
from flowlang.service import create_app
from flowlang.service.metrics_access import metrics_token
from flowlang.service.settings import Settings
from tests.service.api_helpers import make_api, under_test_client
from tests.service.helpers import (
    METRICS_AUTH,
    METRICS_TOKEN,
    METRICS_TOKEN_ENV,
    environment,
    settings_for,
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)


def served(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path, env: None) -> Iterator[TestClient]:
    yield from served(settings_for(tmp_path))


def without_metrics_token(settings: Settings) -> Settings:
    """The same deployment, with no `access.metrics_token_env`."""
    yaml = YAML()
    data = yaml.load(settings.deployment.read_text("utf-8"))
    del data["access"]
    with settings.deployment.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return settings


def test_the_metrics_token_reads_the_metrics(client: TestClient) -> None:
    answer = client.get("/metrics", headers=METRICS_AUTH)
    assert answer.status_code == 200
    assert "flowlang_worker_backlog" in answer.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
    ],
    ids=["none", "wrong", "not-bearer", "longer"],
)
def test_metrics_without_the_token_are_401_and_show_nothing(
    client: TestClient, headers: dict[str, str]
) -> None:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "flowlang_" not in answer.text


def test_an_api_token_does_not_read_the_metrics(tmp_path: Path, env: None) -> None:
    for api in under_test_client(make_api(tmp_path)):
        assert api.get("ada", "/metrics").status_code == 401  # an admin's token neither


def test_health_and_ready_stay_open(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


def test_with_no_metrics_token_configured_metrics_answer_no_one(tmp_path: Path, env: None) -> None:
    for client in served(without_metrics_token(settings_for(tmp_path))):
        answer = client.get("/metrics", headers=METRICS_AUTH)
        assert answer.status_code == 403
        assert answer.json()["detail"]["code"] == "metrics_off"
        assert "access.metrics_token_env" in answer.json()["detail"]["reason"]


def test_a_metrics_token_variable_unset_answers_no_one_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deployment, problems = load_deployment(settings_for(tmp_path).deployment)
    assert deployment is not None, problems
    with caplog.at_level(logging.WARNING, "flowlang.service"):
        assert metrics_token(deployment, {}) is None
        assert metrics_token(deployment, {METRICS_TOKEN_ENV: "  "}) is None
    assert f"{METRICS_TOKEN_ENV} is not set" in caplog.text
    assert f"{METRICS_TOKEN_ENV} is set but blank" in caplog.text
    assert metrics_token(deployment, {METRICS_TOKEN_ENV: METRICS_TOKEN}) == METRICS_TOKEN
