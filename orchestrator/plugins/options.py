"""A plugin's options, parsed by its type's model, errors pointing into the request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import ValidationFailed


def parse_options(
    kind: str, pointer: str, model: type[BaseModel], options: dict[str, Any]
) -> BaseModel:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise ValidationFailed(
            f"invalid {kind} options",
            errors=[
                {"pointer": pointer + "".join(f"/{p}" for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ],
        ) from None
