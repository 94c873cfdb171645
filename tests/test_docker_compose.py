"""docker-compose.yml parses and runs real stickerq commands (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import typer.main
import yaml

from stickerq.cli import app

ROOT = Path(__file__).resolve().parents[1]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


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
    assert {"redis", "postgres", "migrate", "worker", "beat", "sandbox"} <= set(services)


def test_compose_commands_are_real_stickerq_commands() -> None:
    services = load_compose()["services"]
    entrypoint = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["stickerq"]' in entrypoint
    checked = []
    for name, service in services.items():
        if service.get("image", "").startswith("stickerq"):
            command_name, _ = parse_cli(service["command"])
            checked.append((name, command_name))
    assert sorted(checked) == [
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
