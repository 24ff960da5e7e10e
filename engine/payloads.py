"""Event data checked against the transition's schema (pydantic), once per operation.

A payload that is not a mapping, data for an event that takes none, every field the
schema refuses, and a number the schema made that JSON cannot hold are one
:class:`InvalidData` with every problem and its location.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from . import limits
from .definitions import WorkflowDefinition
from .errors import InvalidData, Problem


def validated(
    definition: WorkflowDefinition,
    schema: str | None,
    data: Mapping[str, Any],
    now: datetime,
    what: Callable[[], str],
) -> dict[str, Any]:
    """The payload as the schema makes it; ``what`` names the operation in an error."""
    if not isinstance(data, Mapping):
        raise InvalidData(
            what(), [Problem("", f"data must be a mapping, got {type(data).__name__}")]
        )
    if schema is None:
        if data:
            raise InvalidData(
                what(), [Problem(k, "this event takes no data; leave it out") for k in data]
            )
        return {}
    model: type[BaseModel] = definition.hooks.schemas[schema]
    if not data and (constant := constant_empty_payload(model)) is not None:
        return dict(constant)
    try:
        parsed = model.model_validate(
            data if type(data) is dict else dict(data), context={"now": now}
        )
    except ValidationError as exc:
        raise InvalidData(
            what(),
            [
                Problem(".".join(str(p) for p in err["loc"]), _message(err))
                for err in exc.errors(include_url=False)
            ],
        ) from None
    # The serializer directly: model_dump's own wrapper is measurable on the hot path.
    dumped: dict[str, Any] = model.__pydantic_serializer__.to_python(
        parsed, mode="json", exclude_none=True
    )
    # The data as given was checked on entry (engine/limits.py); what the schema made of
    # it can still be a number JSON cannot hold (the text "9" * 30 for an int field).
    # Encoding it is the cheap test (the store encodes it the same way); the walk that
    # names the place runs only when that fails.
    try:
        orjson.dumps(dumped)
    except orjson.JSONEncodeError:
        problems = limits.data_problems(dumped)
        limits.refuse(what(), problems or [Problem("", "cannot be stored as JSON")])
    return dumped


@cache
def constant_empty_payload(model: type[BaseModel]) -> dict[str, Any] | None:
    """What an empty payload validates to, when nothing but the model decides it.

    Many events carry no data (``verify``, ``complete_materials``); validating ``{}``
    against a model with no model-level validators and no validated defaults always
    gives the same scalars, so it is done once per model. Otherwise None: validate.
    """
    validated_defaults = model.model_config.get("validate_default") or any(
        f.validate_default for f in model.model_fields.values()
    )
    if model.__pydantic_decorators__.model_validators or validated_defaults:
        return None
    try:
        parsed = model.model_validate({})
    except ValidationError:
        return None  # required fields: let the caller validate and report them
    dumped: dict[str, Any] = model.__pydantic_serializer__.to_python(
        parsed, mode="json", exclude_none=True
    )
    scalars = all(isinstance(v, (str, int, float, bool)) for v in dumped.values())
    return dumped if scalars else None


def _message(err: Any) -> str:
    msg = str(err["msg"])
    # pydantic prefixes custom errors with "Value error, "; the prefix helps nobody.
    return msg.removeprefix("Value error, ")
