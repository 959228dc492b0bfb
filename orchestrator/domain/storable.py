"""Text and JSON that Postgres can store. Its text and jsonb types refuse NUL characters and
lone UTF-16 surrogates; such input must be a 422 at the edge, not a 500 from the database."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator


def check_storable(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain the NUL character (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no unpaired surrogates)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key)
            check_storable(item)
    elif isinstance(value, list):
        for item in value:
            check_storable(item)
    return value


StorableJson = Annotated[dict[str, Any], AfterValidator(check_storable)]
StorableText = Annotated[str, AfterValidator(check_storable)]
