"""Write docs/configuration.md: every field of `Settings`, with its variable, default, type and
description, generated from stickerq/settings.py so the table cannot miss a setting.

    python -m stickerq.cli.config_docs [docs/configuration.md]

tests/test_config_docs.py fails when the file differs from what this writes.
"""

from __future__ import annotations

import enum
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from stickerq.settings import Settings, default_database_url

REGENERATE = "make config-docs"  # = .venv/bin/python -m stickerq.cli.config_docs

# A default made at start-up is described, not computed: the generated file must not hold
# the path of the machine that ran the generator.
FACTORY_DEFAULTS: dict[Callable[[], Any], str] = {
    default_database_url: "a SQLite file in the user's data folder "
    "(`~/.local/share/stickerq/stickerq.db` on Linux), the same from any directory; "
    "`stickerq config` shows it",
}

INTRO = """\
# Configuration

<!-- Generated from stickerq/settings.py by stickerq/cli/config_docs.py: edit the fields'
descriptions there, then run `{regenerate}`.
tests/test_config_docs.py fails when this file is out of date. -->

stickerq reads its settings once, when a command, worker, beat or the API starts, from
environment variables named `{prefix}` and the setting's name in capitals, or from a `.env`
file in the working directory (the environment wins). An empty variable counts as unset.
A list is written as JSON (`{prefix}RETRY_DELAYS_SECONDS='[300, 600, 900]'`). Secrets are
never logged, stored or shown: `stickerq config [--json]` prints the settings in force with
each secret only as set or not.

The few settings a newcomer sets are in the [README](../README.md#configuration); several
Kaleyra accounts in one deployment are described in
[deployment.md](deployment.md#several-kaleyra-accounts).

| variable | default | type | meaning |
|---|---|---|---|
"""


def render(settings: type[BaseSettings] = Settings) -> str:
    """The whole of docs/configuration.md."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = [_row(prefix, name, field) for name, field in settings.model_fields.items()]
    return INTRO.format(regenerate=REGENERATE, prefix=prefix) + "".join(rows)


def variable(prefix: str, name: str, field: FieldInfo) -> str:
    """The environment variable of a field: its alias if it has one, else prefix + NAME."""
    alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
    return alias.upper() if alias else f"{prefix}{name.upper()}"


def _row(prefix: str, name: str, field: FieldInfo) -> str:
    cells = (
        f"`{variable(prefix, name, field)}`",
        describe_default(field),
        _type(field.annotation) + _bounds(field),
        _escaped(field.description or ""),
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |\n"


def _escaped(text: str) -> str:
    """Markdown of plain text: `<pod>` outside code spans would be read as an HTML tag."""
    parts = text.split("`")
    return "`".join(part if i % 2 else part.replace("<", "\\<") for i, part in enumerate(parts))


def describe_default(field: FieldInfo) -> str:
    """The default as a user would write it; a secret's value and a computed one never."""
    if field.default_factory is not None:
        factory = field.default_factory
        if factory in FACTORY_DEFAULTS:
            return FACTORY_DEFAULTS[factory]
        doc = (getattr(factory, "__doc__", None) or "").strip()
        return doc.split("\n\n")[0].replace("\n", " ") or "computed at start"
    value = field.default
    if isinstance(value, SecretStr):
        return "empty (secret)" if not value.get_secret_value() else "set (secret, not shown)"
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    return f"`{_written(value)}`"


def _written(value: Any) -> str:
    """A value as it would be written in the variable: lists as JSON, 80.0 as 80."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple | dict):
        return json.dumps(_plain(value))
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _type(annotation: Any) -> str:
    """A reader's word for a field's type."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type(arg) for arg in args if arg is not type(None))
    if origin is Literal:
        return _one_of([f"`{_written(arg)}`" for arg in args])
    if origin in (list, tuple, set, frozenset):
        return f"JSON list of {_type(args[0]) + 's' if args else 'values'}"
    if origin is dict:
        return "JSON object"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _one_of([f"`{member.value}`" for member in annotation])
    words = {str: "text", int: "integer", float: "number", bool: "`true` or `false`",
             Path: "path", SecretStr: "secret"}  # fmt: skip
    return words.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _one_of(choices: list[str]) -> str:
    return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]


def _bounds(field: FieldInfo) -> str:
    """The field's limits (`gt`, `ge`, `lt`, `le`), e.g. ", ≥ 1, ≤ 5000"."""
    words = []
    for item in field.metadata:
        if isinstance(item, Gt):
            words.append(f"> {_written(item.gt)}")
        elif isinstance(item, Ge):
            words.append(f"≥ {_written(item.ge)}")
        elif isinstance(item, Lt):
            words.append(f"< {_written(item.lt)}")
        elif isinstance(item, Le):
            words.append(f"≤ {_written(item.le)}")
    return "".join(f", {word}" for word in words)


def main(argv: list[str]) -> None:
    target = Path(argv[0] if argv else "docs/configuration.md")
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
