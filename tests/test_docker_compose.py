"""docker-compose.yml (production) and docker-compose.sandbox.yml (dry run) parse, run real
stickerq commands and resolve to the settings each set-up needs (no Docker engine here)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import typer.main
import yaml

from stickerq.api import create_app
from stickerq.cli import app
from stickerq.redis_client import parse_sentinel_url
from stickerq.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
STICKERQ_SERVICES = ("migrate", "worker", "beat", "api")


def load_compose(*overrides: str) -> dict:
    """docker-compose.yml with the override files merged as `docker compose -f ... -f ...`
    merges them: mappings key by key (environment, depends_on), anything else replaced."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in overrides:
        override = yaml.safe_load((ROOT / name).read_text())
        for service_name, service in override["services"].items():
            merged = compose["services"].setdefault(service_name, {})
            for key, value in service.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
    return compose


def interpolate(value: str, environment: dict[str, str]) -> str:
    """Compose's `${NAME:-default}` and `${NAME}`, against the given shell environment."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3) or ""
        return environment.get(name) or default

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", one, str(value))


def service_settings(
    service: dict, shell: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The Settings a container of this service would read at start-up."""
    for name, value in service["environment"].items():
        monkeypatch.setenv(name, interpolate(value, shell))
    return Settings(_env_file=None)  # type: ignore[call-arg]


def parse_cli(args: list[str]) -> tuple[str, object]:
    """Resolve args against the real CLI, as `stickerq ARGS` would, without running it."""
    command = typer.main.get_command(app)
    name, rest = "stickerq", list(args)
    while hasattr(command, "commands"):  # a group: the first argument names a subcommand
        name, rest = rest[0], rest[1:]
        assert name in command.commands, f"unknown stickerq command {name!r}"
        command = command.commands[name]
    return name, command.make_context(name, rest)  # raises on an unknown option


def test_compose_has_every_service_of_the_design() -> None:
    services = load_compose()["services"]
    assert {"redis", "postgres", "migrate", "worker", "beat", "api"} <= set(services)
    assert "sandbox" not in services
    assert "sandbox" in load_compose("docker-compose.sandbox.yml")["services"]


def test_compose_commands_are_real_stickerq_commands() -> None:
    services = load_compose("docker-compose.sandbox.yml")["services"]
    entrypoint = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["stickerq"]' in entrypoint
    checked = []
    for name, service in services.items():
        if service.get("image", "").startswith("stickerq"):
            command_name, _ = parse_cli(service["command"])
            checked.append((name, command_name))
    assert sorted(checked) == [
        ("api", "api"),
        ("beat", "beat"),
        ("migrate", "upgrade"),
        ("sandbox", "sandbox"),
        ("worker", "worker"),
    ]


def test_compose_settings_are_stickerq_settings() -> None:
    from stickerq.settings import Settings

    fields = {f"STICKERQ_{name.upper()}" for name in Settings.model_fields}
    environment = load_compose()["services"]["worker"]["environment"]
    assert set(environment) <= fields


def test_production_compose_sends_to_kaleyra_with_the_operators_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shell = {
        "STICKERQ_KALEYRA_SID": "HXIN0000REAL",
        "STICKERQ_KALEYRA_API_KEY": "real-key",
        "STICKERQ_KALEYRA_POD": "eu",
        "STICKERQ_SENDER": "+919812345678",
    }
    services = load_compose()["services"]
    for name in STICKERQ_SERVICES:
        settings = service_settings(services[name], shell, monkeypatch)
        assert settings.kaleyra_base_url is None, name  # the pod's domain, not the sandbox
        assert settings.kaleyra_sid == "HXIN0000REAL"
        assert settings.kaleyra_api_key.get_secret_value() == "real-key"
        assert (settings.kaleyra_pod, settings.sender) == ("eu", "+919812345678")


def test_sandbox_override_points_every_stickerq_service_at_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = load_compose("docker-compose.sandbox.yml")["services"]
    _, sandbox = parse_cli(services["sandbox"]["command"])
    port = sandbox.params["port"]
    for name in STICKERQ_SERVICES:
        settings = service_settings(services[name], {}, monkeypatch)
        assert settings.kaleyra_base_url == f"http://sandbox:{port}", name
        assert settings.kaleyra_sid == sandbox.params["sid"]
        assert settings.kaleyra_api_key.get_secret_value() == sandbox.params["api_key"]
        assert settings.sender in sandbox.params["sender"]
    assert "sandbox" in services["worker"]["depends_on"]
    assert "migrate" in services["worker"]["depends_on"]  # the base file's, kept


def test_long_running_services_have_health_checks_that_can_pass() -> None:
    services = load_compose()["services"]
    for name in ("redis", "postgres", "worker", "api"):
        assert services[name]["healthcheck"]["test"], name
    # the API's check asks its own /readyz, on the port its command listens on
    _, api = parse_cli(services["api"]["command"])
    check = " ".join(services["api"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{api.params['port']}/readyz" in check
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    assert app.url_path_for("readyz") == "/readyz"
    # the worker's check pings its own node through the app Celery's commands load
    check = services["worker"]["healthcheck"]["test"][1]
    assert "-A stickerq.worker.celery_app inspect ping" in check
    assert "-d celery@$$HOSTNAME" in check  # $$: compose passes one $ to the shell
    assert importlib.util.find_spec("stickerq.worker.celery_app") is not None


def test_the_sandbox_calls_back_the_api_at_the_url_of_the_apis_own_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = load_compose("docker-compose.sandbox.yml")["services"]
    _, sandbox = parse_cli(services["sandbox"]["command"])
    _, api = parse_cli(services["api"]["command"])
    settings = service_settings(services["api"], {}, monkeypatch)
    secret = settings.callback_secret.get_secret_value()
    assert sandbox.params["callback_url"] == (
        f"http://api:{api.params['port']}/callbacks/kaleyra/{secret}"
    )
    assert "api" in services and "sandbox" in services


def test_the_worker_serves_its_metrics_to_a_scraper_beside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = load_compose()["services"]["worker"]
    _, command = parse_cli(worker["command"])
    assert command.params["metrics_port"] == 9108
    assert service_settings(worker, {}, monkeypatch).worker_metrics_host == "0.0.0.0"


def test_sentinel_override_reaches_redis_through_three_sentinels_watching_its_master(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = load_compose("docker-compose.sentinel.yml")["services"]
    sentinels = [name for name in services if name.startswith("sentinel-")]
    assert len(sentinels) == 3
    for name in STICKERQ_SERVICES:
        settings = service_settings(services[name], {}, monkeypatch)
        target = settings.redis_target
        assert target.is_sentinel and target.sentinel_master == "stickerq", name
        hosts = [host for host, _ in parse_sentinel_url(target.url).hosts]
        assert hosts == sentinels, name
    for name in sentinels:
        script = services[name]["command"][0]
        assert "sentinel monitor stickerq redis 6379 2" in script  # the master, quorum 2
        assert script.rstrip().endswith("--sentinel")
    assert "--replicaof" in services["redis-replica"]["command"]
    assert services["redis-replica"]["command"][services["redis-replica"]["command"].index(
        "--replicaof") + 1] == "redis"  # fmt: skip
