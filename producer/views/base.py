"""The base of every JSON view, the two time formats, and the fields several views share.

A view is made from a producer result by `View.of(result)`, which reads each field from the
attribute of the same name; a view whose keys differ from its result's attributes has its own
`of_...` constructor. Times keep the format each command has always printed, so the JSON stays
what scripts read today.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue

from stickerq.export import iso_utc

if TYPE_CHECKING:
    from typing import TextIO

_DATE_TIME = WithJsonSchema({"type": "string", "format": "date-time"})
# ISO 8601 with the moment's own offset: `2024-05-01T09:00:05+00:00`, `2030-06-01T09:30:00+05:30`.
Time = Annotated[
    datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json"), _DATE_TIME
]
# ISO 8601 in UTC with microseconds and a `Z`: `2024-05-01T09:00:05.000000Z` (`report`).
UtcTime = Annotated[
    datetime, PlainSerializer(iso_utc, return_type=str, when_used="json"), _DATE_TIME
]

CampaignId = Annotated[int, Field(description="the campaign's id, as `stickerq send` printed it")]
Recipients = Annotated[int, Field(description="messages of the campaign, one per recipient")]
Attempts = Annotated[int, Field(description="API requests made, every retry included")]
Batches = Annotated[int, Field(description="send_batch tasks dispatched to the workers")]
Warnings = Annotated[list[str], Field(description="what was done but is worth a look")]
ByCode = Annotated[
    dict[str, int],
    Field(
        description="each message's latest error code -> messages, for messages that have one "
        "(whatever their status): Kaleyra's (`WA400`, `E110`, ...) and Meta's from callbacks "
        "(`131047`: outside the 24-hour window; a sticker is not a template). An `unknown` "
        "message answered 202 without a message_id counts under `WA202`; a WA500 that later "
        "succeeded counts nowhere"
    ),
]
ZONE = "IANA zone (`Asia/Kolkata`), or a fixed offset (`+05:30`) when only an offset was given"
Zone = Annotated[str, Field(description=ZONE)]


class View(BaseModel):
    """A JSON document, or part of one. Its keys come in the order of its fields: those of
    its bases first, and of those the base named last first."""

    model_config = ConfigDict(extra="forbid", from_attributes=True, frozen=True)

    @classmethod
    def of(cls, source: object, **values: object) -> Self:
        """The view of `source`: each field not in `values` is its attribute of that name."""
        for name in cls.model_fields.keys() - values.keys():
            values[name] = getattr(source, name)
        return cls.model_validate(values)


def to_json(view: BaseModel | Sequence[BaseModel]) -> str:
    """One line of JSON as json.dumps writes it (ASCII only: safe on any terminal)."""
    if isinstance(view, BaseModel):
        return json.dumps(view.model_dump(mode="json"))
    return json.dumps([item.model_dump(mode="json") for item in view])


def write_streamed(out: TextIO, head: BaseModel, rows: Iterable[BaseModel]) -> None:
    """`head` with its last field, a list, written row by row from `rows`: a listing of
    millions never sits in memory (`head` holds that list empty)."""
    *_, last = type(head).model_fields
    opening = json.dumps(head.model_dump(mode="json", exclude={last}))[:-1]
    out.write(f"{opening}{', ' if len(opening) > 1 else ''}{json.dumps(last)}: [")
    for index, row in enumerate(rows):
        out.write((", " if index else "") + to_json(row))
    out.write("]}\n")


class _Schema(GenerateJsonSchema):
    """Descriptions on one line (a docstring's line breaks are not the reader's), and no field
    titles: pydantic titles every field with its name capitalised, noise beside the name."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: Any, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        return _one_line(super().generate(schema, mode))


def _one_line(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: " ".join(item.split())
            if key == "description" and isinstance(item, str)
            else _one_line(item)
            for key, item in value.items()
        }
    return [_one_line(item) for item in value] if isinstance(value, list) else value


def json_schema(output: Any) -> dict[str, Any]:
    """The JSON Schema of a view, or of a list or union of views."""
    return TypeAdapter(output).json_schema(schema_generator=_Schema)
